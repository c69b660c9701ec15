"""A bare faust-streaming agent that sends every record of one topic on to another: the baseline for bench/pipeline.py.

    python bench/passthrough.py BOOTSTRAP SOURCE_TOPIC SINK_TOPIC DATA_DIR

It runs until SIGTERM. Its settings are Beat's broker settings (``agents/faust_app.py``)
and nothing more, so the ratio in the benchmark compares Beat with Faust itself.
"""

from __future__ import annotations

import argparse

import faust


def build_app(bootstrap: str, source: str, sink: str, data_dir: str) -> faust.App:
    app = faust.App(
        "bench-passthrough",
        broker=f"kafka://{bootstrap}",
        autodiscover=False,
        web_enabled=False,
        store="memory://",
        datadir=data_dir,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        # Tansu holds a group join for half the session timeout (environment.md).
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        topic_disable_leader=True,
    )
    source_topic = app.topic(source, key_type=bytes, value_type=bytes)
    sink_topic = app.topic(sink, key_type=bytes, value_type=bytes)

    @app.agent(source_topic)
    async def forward(stream: faust.StreamT) -> None:
        async for value in stream:
            await sink_topic.send(value=value)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bootstrap")
    parser.add_argument("source")
    parser.add_argument("sink")
    parser.add_argument("data_dir")
    args = parser.parse_args()
    app = build_app(args.bootstrap, args.source, args.sink, args.data_dir)
    faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
