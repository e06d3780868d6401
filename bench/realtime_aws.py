"""Realtime delivery through AWS SNS/SQS: gateway -> SNS -> SQS -> scheduler, separate processes.

    python bench/realtime_aws.py [--rate 1000] [--seconds 10] [--connections 32] [--endpoint http://127.0.0.1:5000]

Needs ``core-plugin-aws`` installed and a moto server (``python .ci/services.py aws`` starts one
on 127.0.0.1:5000). First the raw baseline, in the same run: boto3 alone (no adapter, no core)
publishing one message at a time to an SNS topic fanning out to an SQS queue that one long poll
reads, at a low rate, and the latency from the publish's confirm to the receive. Then
:mod:`realtime_broker` with a fresh name prefix. moto keeps its topics and queues in memory
only; the figures are moto's, not AWS's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import threading
import time
from pathlib import Path

import boto3
from realtime_broker import _percentile, run

REGION = "us-east-1"


def baseline(endpoint: str, messages: int = 200, interval: float = 0.01) -> None:
    """boto3 alone: SNS Publish -> SQS ReceiveMessage (long poll), confirm-to-receive latency."""
    kw = {"endpoint_url": endpoint, "region_name": REGION}
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    name = f"bench-raw-{secrets.token_hex(4)}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    confirmed: dict[str, float] = {}
    received: dict[str, float] = {}
    done = threading.Event()

    def receive() -> None:
        while not done.is_set() or len(received) < len(confirmed):
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            now = time.time()
            for message in got.get("Messages", []):
                received.setdefault(message["Body"], now)
            if got.get("Messages"):
                sqs.delete_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got["Messages"])
                ])
            if done.is_set() and len(received) >= len(confirmed):
                return

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    publish_ms = []
    for n in range(messages):
        started = time.time()
        sns.publish(TopicArn=topic, Message=str(n))
        confirmed[str(n)] = time.time()
        publish_ms.append((confirmed[str(n)] - started) * 1000)
        time.sleep(interval)
    done.set()
    reader.join(30)
    waits = sorted((received[k] - at) * 1000 for k, at in confirmed.items() if k in received)
    publish_ms.sort()
    print(f"raw baseline (boto3 alone, {messages} messages one at a time): publish confirmed in "
          f"p50 {_percentile(publish_ms, 50):.1f} ms; confirm -> receive p50 {_percentile(waits, 50):.1f} ms  "
          f"p99 {_percentile(waits, 99):.1f} ms ({len(waits)} of {messages} received)")
    sns.delete_topic(TopicArn=topic)
    sqs.delete_queue(QueueUrl=queue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="", help="the moto server (default: .ci/.aws-endpoint, else :5000)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load generator")
    parser.add_argument("--store", default="sqlite:///core.db", help="the store URL (default: SQLite, temporary)")
    args = parser.parse_args()
    endpoint = args.endpoint
    if not endpoint:
        known = Path(__file__).resolve().parent.parent / ".ci" / ".aws-endpoint"
        endpoint = known.read_text().strip() if known.is_file() else "http://127.0.0.1:5000"
    # moto takes any credentials; real ones are never needed (nor read) for a local endpoint.
    for variable, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(variable, value)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    baseline(endpoint)
    prefix = f"bench{secrets.token_hex(4)}"
    url = f"aws://?region={REGION}&endpoint_url={endpoint}&prefix={prefix}"
    run(url, args.rate, args.seconds, args.connections, args.store)
    print(json.dumps({"endpoint": endpoint, "prefix": prefix}))


if __name__ == "__main__":
    main()
