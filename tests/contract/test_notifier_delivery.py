"""How bus events reach the notifier: through its SQS queue, so that one failing record never holds up the others.

Asynchronous invocation retried an event twice within minutes and parked it with Lambda's own envelope; a queue
retries it for hours, bounds the notifier's concurrency without reserving any, and parks the EventBridge event as it
was, ready to be redriven.
"""

from __future__ import annotations

from typing import Any

from local.template import NO_VALUE, Resolver, functions, load_template
from tests.contract.test_alarm_delivery import allows, refs

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
NOTIFIER: dict[str, Any] = RESOURCES["NotifierFunction"]["Properties"]


def target_of(rule: str) -> dict[str, Any]:
    [target] = RESOURCES[rule]["Properties"]["Targets"]
    return dict(target)


def test_bus_events_reach_the_notifier_through_its_queue_and_never_directly() -> None:
    target = target_of("NotifierEventsRule")
    assert refs(target["Arn"]) == ["NotifierQueue"]
    assert refs(target["DeadLetterConfig"]["Arn"]) == ["NotifierDeadLetterQueue"]
    [source] = [event["Properties"] for event in NOTIFIER["Events"].values() if event["Type"] == "SQS"]
    assert refs(source["Queue"]) == ["NotifierQueue"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert refs(source["ScalingConfig"]["MaximumConcurrency"]) == ["NotifierMaximumConcurrency"]
    permissions = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::Permission"]
    invoked_by = {rule for p in permissions if refs(p["FunctionName"]) == ["NotifierFunction"] for rule in refs(p)}
    assert invoked_by == {"NotifierFunction", "NotifierSweepRule"}


def test_the_queue_is_seen_through_six_timeouts_and_parks_a_record_after_its_tries() -> None:
    queue = RESOURCES["NotifierQueue"]["Properties"]
    # Lambda's guidance for an SQS event source: visibility at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * NOTIFIER["Timeout"]
    assert refs(queue["RedrivePolicy"]["deadLetterTargetArn"]) == ["NotifierDeadLetterQueue"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 3
    assert queue["SqsManagedSseEnabled"] is True
    dead_letters = RESOURCES["NotifierDeadLetterQueue"]["Properties"]
    assert dead_letters["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_only_the_bus_rule_may_send_to_the_queue_and_its_dead_letter_queue() -> None:
    for queue, policy in (
        ("NotifierQueue", "NotifierQueuePolicy"),
        ("NotifierDeadLetterQueue", "NotifierDeadLetterQueuePolicy"),
    ):
        document = RESOURCES[policy]["Properties"]["PolicyDocument"]
        assert refs(RESOURCES[policy]["Properties"]["Queues"]) == [queue]
        assert allows(document, "events.amazonaws.com", "sqs:SendMessage")
        [allowed] = [s for s in document["Statement"] if s["Effect"] == "Allow"]
        assert refs(allowed["Condition"]) == ["NotifierEventsRule"]


def test_the_sweep_alone_is_invoked_asynchronously_and_is_not_retried_or_parked() -> None:
    assert NOTIFIER["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert "DestinationConfig" not in NOTIFIER["EventInvokeConfig"]
    target = target_of("NotifierSweepRule")
    assert refs(target["Arn"]) == ["NotifierFunction"]
    assert "DeadLetterConfig" not in target


def test_no_concurrency_is_reserved_unless_asked_for() -> None:
    resolver = Resolver(TEMPLATE, stack_name="contract")
    for name in ("NotifierFunction", "ConnectionReplacerFunction"):
        assert resolver.resolve(RESOURCES[name]["Properties"]["ReservedConcurrentExecutions"]) is NO_VALUE
    asked = Resolver(
        TEMPLATE, parameter_overrides={"NotifierReservedConcurrency": "3", "ReplacerReservedConcurrency": "2"}
    )
    assert asked.resolve(NOTIFIER["ReservedConcurrentExecutions"]) == "3"
    assert asked.resolve(RESOURCES["ConnectionReplacerFunction"]["Properties"]["ReservedConcurrentExecutions"]) == "2"


def test_the_local_stack_reads_the_queue_as_lambda_does() -> None:
    [notifier] = [
        spec
        for spec in functions(TEMPLATE, Resolver(TEMPLATE, stack_name="contract"))
        if spec.name == "NotifierFunction"
    ]
    [source] = notifier.queues
    assert (source.queue, source.batch_size, source.reports_failures) == ("NotifierQueue", 10, True)
    bus_rules = [rule for rule in notifier.rules if rule.kind == "pattern"]
    assert [rule.queue for rule in bus_rules] == ["NotifierQueue"]
