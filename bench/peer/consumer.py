"""A Python peer of `driftwatch run` for bench/run.sh --peer.

What it does: one confluent-kafka consumer in its own group, subscribed to the predictions and
labels topics, consumes in batches; each message is decoded with json.loads and each batch goes
to Redis in two pipelined round trips:

1. reads: GETDEL of the join key of every message in the batch (a label takes its prediction's
   record; a prediction takes a label that came first and was parked; a label whose prediction
   is in the same batch is joined in Python);
2. writes: for a prediction, SET p:<id> "<window> <class> <score>" with a TTL (the label horizon),
   unless its label is already there; for a label without its prediction, SET NX l:<id> (parked);
   then HINCRBY of the counters: per window, predictions, labeled and correct, and one
   histogram bin (fixed width: floor of value / 25) per numeric feature. The increments are
   summed per batch in Python (collections.Counter), one HINCRBY per distinct counter of the
   batch; --per-message sends one HINCRBY per increment instead (the naive version).

Offsets are committed (synchronously) after each batch's pipelines executed: at least once.
It stops after --count messages and prints one JSON line: messages, seconds from the first
message to the last, msgs/s, its own CPU seconds (getrusage: all its threads, librdkafka's
included, from process start) and the CPU Redis used meanwhile (INFO cpu, whole server).

What it leaves out, compared to driftwatch: no sketches, quantiles or categorical counts, no
drift tests, reference windows, performance metrics beyond accuracy, alerting or reports; no
validation of the input (a malformed message raises); no per-version breakdown; no handling of
duplicate or conflicting labels beyond "first parked label wins"; no window closing, lateness or
event-time bounds; and no exactness under crashes: a crash between the Redis writes and the
commit replays the batch and counts it twice (driftwatch commits state and offsets together).
"""
import argparse
import json
import math
import resource
import sys
import time
from collections import Counter
from datetime import datetime

import redis
from confluent_kafka import Consumer, KafkaException

WINDOW_MS = 60_000  # tumbling windows of event time, as driftwatch's bench config
BIN_WIDTH = 25.0  # histogram bin width, every numeric feature (4 to 35 bins on gen's traffic)
TTL_S = 3600  # the label horizon: join records expire after it


def window_of(ts):
    """Start (epoch ms) of the window of an RFC 3339 timestamp."""
    ms = int(datetime.fromisoformat(ts).timestamp() * 1000)
    return ms - ms % WINDOW_MS


def redis_cpu(r):
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def process(batch, r, predictions_topic, per_message=False):
    """Applies one batch of messages to Redis (two pipelined round trips)."""
    preds, labels = [], []
    for msg in batch:
        if msg.error():
            raise KafkaException(msg.error())
        ev = json.loads(msg.value())
        (preds if msg.topic() == predictions_topic else labels).append(ev)
    by_id = {}
    for p in preds:
        p["_window"] = window_of(p["timestamp"])
        by_id[p["prediction_id"]] = p

    # A label whose prediction is in this same batch joins here; the others go to Redis.
    to_redis = []
    for lab in labels:
        p = by_id.get(lab["prediction_id"])
        if p is None:
            to_redis.append(lab)
        elif "_label" not in p:  # first label wins, duplicates are dropped
            p["_label"] = lab["label"]

    # Join reads, one pipeline: a prediction takes a label parked before it, a label takes
    # its prediction's record (GETDEL: look up and delete in one command).
    reads = r.pipeline(transaction=False)
    for p in preds:
        reads.getdel("l:" + p["prediction_id"])
    for lab in to_redis:
        reads.getdel("p:" + lab["prediction_id"])
    found = reads.execute()

    # Counter increments of the batch as (hash key, field); summed below.
    incr = []
    writes = r.pipeline(transaction=False)

    def count_label(window, predicted, label):
        key = f"w:{window}"
        incr.append((key, "labeled"))
        if predicted == label:
            incr.append((key, "correct"))

    for p, parked in zip(preds, found):
        window = p["_window"]
        incr.append((f"w:{window}", "predictions"))
        for name, value in p["features"].items():  # numeric only: categorical are strings
            if isinstance(value, (int, float)) and math.isfinite(value):
                incr.append((f"h:{window}:{name}", int(value // BIN_WIDTH)))
        label = int(parked) if parked is not None else p.get("_label")
        if label is not None:
            count_label(window, p["prediction"], label)
        else:
            record = f"{window} {p['prediction']} {p['score']}"
            writes.set("p:" + p["prediction_id"], record, ex=TTL_S)
    for lab, record in zip(to_redis, found[len(preds):]):
        if record is not None:
            window, predicted, _score = record.split()
            count_label(window, int(predicted), lab["label"])
        else:  # its prediction has not come yet: park the label (the first one wins)
            writes.set("l:" + lab["prediction_id"], lab["label"], ex=TTL_S, nx=True)
    # One HINCRBY per distinct counter of the batch (a batch spans one or two windows: a few
    # hundred commands for 1000 messages, against ~6000 increments), or one per increment.
    if per_message:
        for key, field in incr:
            writes.hincrby(key, field, 1)
    else:
        for (key, field), n in Counter(incr).items():
            writes.hincrby(key, field, n)
    writes.execute()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--redis-port", type=int, default=6379)
    ap.add_argument("--redis-db", type=int, default=0)
    ap.add_argument("--group", default="peer")
    ap.add_argument("--predictions", default="predictions")
    ap.add_argument("--labels", default="labels")
    ap.add_argument("--count", type=int, required=True, help="stop after this many messages")
    ap.add_argument("--batch", type=int, default=1000, help="messages per consume() call")
    ap.add_argument("--per-message", action="store_true",
                    help="one HINCRBY per increment instead of per distinct counter and batch")
    a = ap.parse_args()

    r = redis.Redis(port=a.redis_port, db=a.redis_db, decode_responses=True)
    consumer = Consumer({
        "bootstrap.servers": a.brokers,
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([a.predictions, a.labels])
    redis0 = redis_cpu(r)
    done, first = 0, None
    try:
        while done < a.count:
            batch = consumer.consume(num_messages=a.batch, timeout=1.0)
            if not batch:
                continue
            if first is None:
                first = time.monotonic()
            process(batch, r, a.predictions, a.per_message)
            consumer.commit(asynchronous=False)
            done += len(batch)
        last = time.monotonic()
    finally:
        consumer.close()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    secs = last - first
    print(json.dumps({
        "messages": done,
        "seconds": round(secs, 3),
        "msgs_per_s": round(done / secs),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "process_time_s": round(time.process_time(), 2),
        "redis_cpu_s": round(redis_cpu(r) - redis0, 2),
    }))


if __name__ == "__main__":
    sys.exit(main())
