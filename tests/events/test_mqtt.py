"""MQTT events through a real mosquitto broker on loopback: topics, payloads, a broker that is late."""

from __future__ import annotations

import json

import pytest
from receivers import Broker, Listener, free_port

from facesearch.errors import InputError
from facesearch.events import Dispatcher, event_payload

pytest.importorskip("paho.mqtt.client", reason="pip install 'facesearch[mqtt]'")


def payloads(kinds):
    return [
        event_payload(
            {
                "t": i,
                "frame": i,
                "event": kind,
                "track": 7,
                "name": name,
                "similarity": sim,
                "box": [1, 2, 3, 4],
            },
            "front door",
        )
        for i, (kind, name, sim) in enumerate(kinds)
    ]


def topics(got):
    return [t for t, _, _ in got]


def test_events_people_state_and_frigate_shape(tmp_path):
    from facesearch.events.mqtt import MqttSink

    broker = Broker(tmp_path, free_port())
    listener = Listener(broker.port)
    try:
        sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}")
        assert sink.wait_connected(10)
        d = Dispatcher([sink])
        for p in payloads(
            [("appear", None, None), ("recognized", "Amy", 0.81), ("leave", "Amy", 0.81)]
        ):
            d.send(p)
        got = listener.wait(lambda g: topics(g).count("facesearch/front_door/events") == 3)
        d.close()
        events = [json.loads(p) for t, p, _ in got if t == "facesearch/front_door/events"]
        assert [e["event"] for e in events] == ["appear", "recognized", "leave"]
        assert events[1]["camera"] == "front door" and events[1]["name"] == "Amy"
        state = [json.loads(p) for t, p, r in got if t == "facesearch/people/Amy"]
        assert state[0]["camera"] == "front door" and state[0]["similarity"] == 0.81
        frigate = [json.loads(p) for t, p, _ in got if t == "facesearch/tracked_object_update"]
        assert frigate[0]["type"] == "face" and frigate[0]["name"] == "Amy"
        assert set(frigate[0]) == {"type", "id", "name", "score", "camera", "timestamp"}
        config = [
            json.loads(p) for t, p, _ in got if t == "homeassistant/sensor/facesearch_Amy/config"
        ]
        assert config[0]["state_topic"] == "facesearch/people/Amy"
    finally:
        listener.close()
        broker.stop()


def test_retained_state_reaches_a_later_subscriber(tmp_path):
    from facesearch.events.mqtt import MqttSink

    broker = Broker(tmp_path, free_port())
    try:
        sink = MqttSink(f"mqtt://127.0.0.1:{broker.port}", discovery=False)
        assert sink.wait_connected(20)
        d = Dispatcher([sink])
        d.send(payloads([("recognized", "Raj", 0.7)])[0])
        d.close()
        listener = Listener(broker.port)
        got = listener.wait(lambda g: "facesearch/people/Raj" in topics(g))
        assert [r for t, _, r in got if t == "facesearch/people/Raj"] == [True]
        assert ("facesearch/available", "offline", True) in got
        listener.close()
    finally:
        broker.stop()


def test_a_broker_that_starts_late_still_gets_the_events(tmp_path):
    from facesearch.events.mqtt import MqttSink

    port = free_port()
    sink = MqttSink(f"mqtt://127.0.0.1:{port}", discovery=False)
    d = Dispatcher([sink])
    d.send(payloads([("recognized", "Penny", 0.9)])[0])  # nobody listening yet: not fatal
    assert not sink.wait_connected(0.5)
    broker = Broker(tmp_path, port)
    try:
        assert sink.wait_connected(40)  # paho retries, 1 s doubling
        listener = Listener(port)
        listener.wait(lambda g: "facesearch/people/Penny" in topics(g))
        listener.close()
        d.close()
    finally:
        broker.stop()


def test_bad_url_is_a_one_line_error():
    from facesearch.events.mqtt import MqttSink

    with pytest.raises(InputError, match="expected mqtt://"):
        MqttSink("http://broker")
