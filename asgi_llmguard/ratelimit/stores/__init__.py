"""Rate-limit storage: GCRA state in this process, or in Redis through one Lua script per decision."""
