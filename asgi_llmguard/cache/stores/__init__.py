"""Cache storage: one protocol (:mod:`.base`), an in-memory twin and (with Redis) a shared one."""
