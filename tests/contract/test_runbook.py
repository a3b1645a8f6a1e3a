"""The runbook (docs/operations.md) has an entry for every alarm the template defines, and none for an alarm that
is gone: an on-call engineer paged by an alarm finds what it means and what to do."""

from __future__ import annotations

import re
from pathlib import Path

from local.template import load_template, resources_of_type

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def runbook_entries() -> list[str]:
    alarms_section = RUNBOOK.read_text().split("\n## Alarms\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^### (\w+)$", alarms_section, flags=re.MULTILINE)


def test_every_alarm_has_one_runbook_entry_and_every_entry_an_alarm() -> None:
    alarms = set(resources_of_type(load_template(), "AWS::CloudWatch::Alarm"))
    entries = runbook_entries()

    assert len(entries) == len(set(entries)), "an alarm has two entries"
    assert sorted(alarms - set(entries)) == [], "alarms without a runbook entry"
    assert sorted(set(entries) - alarms) == [], "runbook entries for alarms the template does not define"


def test_each_entry_says_its_tier_what_it_means_how_to_confirm_and_what_to_do() -> None:
    template = load_template()
    section = RUNBOOK.read_text().split("\n## Alarms\n", 1)[1]
    for entry in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        name = entry.split("\n", 1)[0]
        for part in ("- **Tier**:", "- **Means**:", "- **Confirm**:", "- **Do**:"):
            assert part in entry, f"{name}: no {part}"
        [topic] = [action["Ref"] for action in template["Resources"][name]["Properties"]["AlarmActions"]]
        tier = {"AlarmTopic": "page", "TicketTopic": "ticket"}[topic]
        assert f"- **Tier**: {tier}" in entry, f"{name} notifies {topic}: the runbook must say {tier}"
