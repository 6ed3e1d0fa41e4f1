"""Model routing: the router layer (complexity tiers), and LLMProxy with its Peak-EWMA balancer."""
