"""Cache storage: one protocol, an in-memory twin and (with Redis) a shared one."""
