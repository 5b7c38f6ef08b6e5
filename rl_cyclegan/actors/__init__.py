"""Actors: the policy protocol (policies), the one episode runner (rollout) and offline
collection into episode shards (collect)."""
