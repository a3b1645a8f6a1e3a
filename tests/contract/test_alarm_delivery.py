"""Alarms that can reach someone: the topic every alarm notifies can be published to by CloudWatch.

CloudWatch alarms cannot use the AWS-managed SNS key (alias/aws/sns): a topic encrypted with it silently drops every
alarm. The topic needs a customer-managed key whose policy lets CloudWatch encrypt, and a policy letting CloudWatch
publish.
"""

from __future__ import annotations

from typing import Any

from local.template import load_template, resources_of_type

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def refs(value: Any) -> list[str]:
    """Every logical id ``value`` refers to (Ref, GetAtt), however deep."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return [value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            return [target.split(".")[0] if isinstance(target, str) else target[0]]
        return [found for item in value.values() for found in refs(item)]
    if isinstance(value, list):
        return [found for item in value for found in refs(item)]
    return []


def alarm_topics() -> set[str]:
    alarms = resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm")
    assert alarms, "the template has alarms"
    topics = {topic for alarm in alarms for topic in refs(RESOURCES[alarm]["Properties"].get("AlarmActions", []))}
    assert all(RESOURCES[alarm]["Properties"].get("AlarmActions") for alarm in alarms), "every alarm notifies someone"
    return topics


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def allows(document: dict[str, Any], principal: str, action: str) -> bool:
    for statement in statements(document):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        services = statement.get("Principal", {}).get("Service", [])
        services = services if isinstance(services, list) else [services]
        granted = any(action == a or (a.endswith("*") and action.startswith(a[:-1])) for a in actions)
        if statement["Effect"] == "Allow" and principal in services and granted:
            return True
    return False


def test_every_alarm_notifies_a_topic_of_this_template():
    topics = alarm_topics()
    assert topics
    assert all(RESOURCES[topic]["Type"] == "AWS::SNS::Topic" for topic in topics)


def test_alarm_topics_are_encrypted_with_a_key_cloudwatch_may_use():
    for topic in alarm_topics():
        key = RESOURCES[topic]["Properties"].get("KmsMasterKeyId")
        assert key != "alias/aws/sns", f"{topic}: CloudWatch alarms cannot publish with the AWS-managed key"
        [key_id] = refs(key)
        assert RESOURCES[key_id]["Type"] == "AWS::KMS::Key"
        policy = RESOURCES[key_id]["Properties"]["KeyPolicy"]
        assert allows(policy, "cloudwatch.amazonaws.com", "kms:Decrypt")
        assert allows(policy, "cloudwatch.amazonaws.com", "kms:GenerateDataKey")
        assert RESOURCES[key_id]["Properties"].get("EnableKeyRotation") is True


def test_cloudwatch_may_publish_to_every_alarm_topic():
    policies = [RESOURCES[name]["Properties"] for name in resources_of_type(TEMPLATE, "AWS::SNS::TopicPolicy")]
    for topic in alarm_topics():
        covering = [policy for policy in policies if topic in refs(policy["Topics"])]
        assert any(allows(policy["PolicyDocument"], "cloudwatch.amazonaws.com", "sns:Publish") for policy in covering)


TIERS = {"AlarmTopic": "page", "TicketTopic": "ticket"}


def test_every_alarm_either_pages_or_opens_a_ticket():
    for alarm in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm"):
        topics = refs(RESOURCES[alarm]["Properties"]["AlarmActions"])
        assert len(topics) == 1, f"{alarm} notifies {topics}: one tier"
        assert topics[0] in TIERS, f"{alarm} notifies {topics[0]}: AlarmTopic or TicketTopic"
    assert alarm_topics() == set(TIERS)
