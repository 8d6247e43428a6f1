"""The controller: observe -> plan -> apply -> status, one pass at a time.

```
controller.py   the loop: lease, observe, plan, apply, persist the status; back-off
observe.py      what a pass reads (registry, store, inbox, last status) -> Observed
plan.py         plan(observed, policy, now) -> [Action]: every decision, pure
actions.py      the closed set of actions, each with its reason and numbers
apply.py        performs actions: registry first, then the event log, then the push
conditions.py   the conditions a pass leaves; status.py their shape and persistence
watch.py        the controller's own triggers: drift, metric, change detector
analysis.py     challenger vs champion on one window: pass, fail or inconclusive
triggers.py     triggers and their admission (cool-down, daily budget, schedule)
worker.py       retraining outside the pass
hooks.py        Alertmanager and GitHub webhooks; github.py dispatches to CI
push.py         tells remote servers to reload; app.py the controller's own routes
clock.py        the injectable clock; metrics.py its Prometheus metrics
```
"""
