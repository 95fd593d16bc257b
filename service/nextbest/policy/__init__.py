"""The domain: policies, features, safety masks, exploration, rewards, the model, the engine.

Nothing here knows gRPC or Redis: transports (``nextbest.api``) and stores
(``nextbest.store``) are adapters around :class:`nextbest.policy.engine.Engine`.
"""
