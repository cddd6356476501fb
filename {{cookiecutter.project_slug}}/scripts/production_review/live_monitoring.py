"""Live checks that alarms reach a person: a confirmed subscriber, and alarms that are quiet.

Why each check matters is written under its id in PRODUCTION_CHECKLIST.md; the functions here say
only what they found, one short sentence per problem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .live import Live
from .registry import check

# A new alarm has no data yet; give it this long after its last state change before its
# INSUFFICIENT_DATA counts as a problem (an alarm in ALARM always does).
SETTLING_TIME = timedelta(minutes=15)
PENDING = "PendingConfirmation"


@check("MON-10", "live")
def alarm_topic_confirmed(live: Live) -> list[str]:
    topic = live.output("AlarmTopicArn")
    subscriptions, token = [], None
    while True:
        paging = {"NextToken": token} if token else {}
        page = live.client("sns").list_subscriptions_by_topic(TopicArn=topic, **paging)
        subscriptions += page.get("Subscriptions", [])
        if not (token := page.get("NextToken")):
            break
    confirmed = [s for s in subscriptions if s.get("SubscriptionArn", PENDING) != PENDING]
    if confirmed:
        return []
    if subscriptions:
        return ["the alarm topic's subscriptions are all pending: confirm the e-mail AWS sent"]
    return ["the alarm topic has no subscriber: set AlarmEmail in infra/app-parameters.json"]


@check("MON-11", "live")
def alarms_quiet(live: Live, now: datetime | None = None) -> list[str]:
    topic = live.output("AlarmTopicArn")
    pages = live.client("cloudwatch").get_paginator("describe_alarms").paginate()
    alarms = [a for page in pages for a in page.get("MetricAlarms", [])]
    ours = [a for a in alarms if topic in a.get("AlarmActions", [])]  # none: MON-4 fails
    moment = now or datetime.now(UTC)
    problems = []
    for alarm in ours:
        state = alarm.get("StateValue")
        since = alarm.get("StateUpdatedTimestamp") or moment
        settling = state == "INSUFFICIENT_DATA" and moment - since < SETTLING_TIME
        if state != "OK" and not settling:
            problems.append(f"{alarm['AlarmName']} is {state}")
    return problems
