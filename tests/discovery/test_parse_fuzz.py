"""Fuzzing the WS-Discovery parser: only ParseError or a message may come out, and memory must not grow."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.discovery.parse import ParseError, WsdMessage, parse_datagram
from tests.discovery import samples

FRAGMENTS = (
    b"<!DOCTYPE x>", b"<!ENTITY a 'b'>", b"&a;", b"&#0;", b"&#x110000;", b"<![CDATA[", b"]]>", b"<?pi x?>",
    b"<!--", b"-->", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00", b"</", b"<d:ProbeMatch>", b"</d:ProbeMatch>",
    b"<a:Address>urn:uuid:", b"%", b"%zz", b"%E1%BB", b"xmlns:s=''", b"encoding='x-unknown'",
)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    """One random mutation: flip, insert, delete, splice a hostile fragment, truncate or duplicate."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del buf[pos : pos + rng.randint(1, 64)]
        elif op == 3:
            buf[pos:pos] = rng.choice(FRAGMENTS)
        elif op == 4:
            del buf[pos:]
        else:
            end = min(len(buf), pos + rng.randint(1, 256))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 30)
    return bytes(buf)


def _parse_outcome(data: bytes) -> str:
    try:
        msg = parse_datagram(data)
    except ParseError:
        return "rejected"
    assert isinstance(msg, WsdMessage)
    return "parsed"


def test_parse_fuzz_100k_mutations_no_crash_no_growth() -> None:
    """100,000 mutated datagrams give ParseError or a message, never another error, and RSS does not grow."""
    rng = random.Random(20261122)
    proc = psutil.Process()
    outcomes = {"rejected": 0, "parsed": 0}
    started = time.monotonic()
    rss_after_warmup = 0
    for i in range(100_000):
        if i == 10_000:
            gc.collect()
            rss_after_warmup = proc.memory_info().rss
        outcomes[_parse_outcome(_mutate(rng, rng.choice(samples.CORPUS)))] += 1
    gc.collect()
    growth = proc.memory_info().rss - rss_after_warmup
    assert sum(outcomes.values()) == 100_000
    assert outcomes["parsed"] > 1000 and outcomes["rejected"] > 1000  # the fuzzer exercises both paths
    assert growth < 4 * 1024 * 1024, f"RSS grew {growth} bytes over 90,000 datagrams"
    # RSS is coarse (a leak of ~40 bytes per datagram hides in it); Python-level allocations are traced exactly
    # over 10,000 more datagrams: anything kept per datagram would show as >= 10,000 x its size.
    tracemalloc.start()
    try:
        for _ in range(2_000):  # warm-up under tracing (caches, interned strings)
            _parse_outcome(_mutate(rng, rng.choice(samples.CORPUS)))
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            _parse_outcome(_mutate(rng, rng.choice(samples.CORPUS)))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 64 * 1024, f"{kept} bytes of Python objects kept over 10,000 datagrams"
    assert time.monotonic() - started < 180


def test_parse_hostile_repeated_no_growth() -> None:
    """Parsing each hostile datagram 2,000 times leaves RSS where it was."""
    hostile = [samples.XXE, samples.LAUGHS, samples.UTF16_DOCTYPE, bytes(range(256)) * 256, samples.WRONG_NAMESPACES]
    proc = psutil.Process()
    for data in hostile:
        _parse_outcome(data)
    gc.collect()
    before = proc.memory_info().rss
    for _ in range(2000):
        for data in hostile:
            _parse_outcome(data)
    gc.collect()
    assert proc.memory_info().rss - before < 2 * 1024 * 1024


_name = st.sampled_from(["Envelope", "s:Envelope", "Header", "Body", "ProbeMatches", "d:ProbeMatch", "Hello",
                         "Bye", "EndpointReference", "Address", "Types", "Scopes", "XAddrs", "RelatesTo", "x"])
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40).map(
    lambda s: s.replace("&", "&amp;").replace("<", "&lt;"))


@st.composite
def _xml(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_name)
    if depth > 6:
        return f"<{name}>{draw(_text)}</{name}>"
    children = draw(st.lists(_xml(depth + 1), max_size=4)) if draw(st.booleans()) else [draw(_text)]
    return f"<{name}>{''.join(children)}</{name}>"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_xml(), junk=st.binary(max_size=64), cut=st.integers(min_value=0, max_value=4000))
def test_parse_fuzz_hypothesis_structured(doc: str, junk: bytes, cut: int) -> None:
    """Structure-aware generated envelopes, with junk spliced in, give ParseError or a message."""
    data = doc.encode()
    _parse_outcome(data)
    _parse_outcome(data[:cut] + junk + data[cut:])


@pytest.mark.slow
@settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=2048) | st.sampled_from(samples.CORPUS).flatmap(
    lambda base: st.tuples(st.just(base), st.integers(0, len(base)), st.binary(max_size=32)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :])))
def test_parse_fuzz_hypothesis_100k(data: bytes) -> None:
    """100,000 hypothesis datagrams (raw bytes and spliced real ones) give ParseError or a message."""
    _parse_outcome(data)
