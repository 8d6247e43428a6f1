"""The controller: triggers, gated rollout with live analysis, automatic rollback."""
