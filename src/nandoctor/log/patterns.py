"""The byte patterns the log parser scans for, one pass per family of lines.

Speed comes from letting the regex engine skip uninteresting text in C: every
pattern starts with a literal (``Iteration ``, ``net output #``, ``] Layer ``) or
with ``]``/newline followed by a one-character look-ahead, which Python's ``re``
rejects without trying the alternatives. One big alternation would be ~30x slower
(measured), so each family gets its own pass over a chunk. ``RARE_RE`` and
``RAW_RE`` are not even run over the whole chunk: ``scan`` tries them only where
numpy found a plausible start.

Messages are matched on their text only: the glog prefix (with or without year),
thread id and ``file:line`` vary between Caffe versions and forks and are ignored.
"""

from __future__ import annotations

import re

# A value as printed: a %g number, nan/inf in any spelling (also MSVC's 1.#QNAN,
# nan(ind)); stops at whitespace so suffixes such as "[ 0 / 70000 ]" are left out.
VALUE = rb"([^\s,;]+)"

# "Iteration N" lines: loss (all formats), lr, Testing net, MultiStep Status. Counters have at
# most 20 digits (Caffe prints ints): a longer digit run is no counter, and int() of one
# thousands of digits long raises.
ITERATION_RE = re.compile(rb"Iteration (\d{1,20})(?!\d)([^\n]*)")
# The same lines with the two everyday shapes taken apart by the regex engine (the rest of
# the line, group 5, only when neither fits): BVLC's "Iteration N, lr = V" and
# "Iteration N (x iter/s, Ys/K iters), loss = V", each ending its line.
_EOL = rb"(?=\r?\n|\r?\Z)"
ITERATION_FAST_RE = re.compile(
    rb"Iteration (\d{1,20})(?!\d)(?:, lr = ([^\s,]+)" + _EOL
    + rb"| \([^)\n]*, ([0-9.eE+-]+)s/\d+ iters?\), loss = ([^\s,;]+)" + _EOL
    + rb"|([^\n]*))"
)  # fmt: skip
SPEED_RE = re.compile(rb"^ \(([^)\n]*)\)")
SECONDS_RE = re.compile(rb"([0-9.eE+-]+) ?s(?:/|$)")
LOSS_RE = re.compile(rb"loss = " + VALUE)
LR_RE = re.compile(rb"^, lr = " + VALUE)
EXTRA_RE = re.compile(rb", (\w+) = " + VALUE)
TESTING_RE = re.compile(rb"^, Testing net(?: \(#(\d{1,20})\))?")
STEP_RE = re.compile(rb"^, step = (\d{1,20})(?!\d)")

# "Train net output #k: name = v (* w = c loss)" and the Test twin.
OUTPUT_RE = re.compile(rb"net output #(\d{1,20}): (\S+) = ([^\s(]+)(?: \(\* ([^\s=]+) = ([^\s)]+) loss\))?")

# debug_info per-blob lines ([Forward]/[Backward]); the [Update] lines of 2014-2015 builds go through RARE_RE.
# The role is kept as its first letter (t/b/p): cheaper to match than the whole word.
# Two groups only (key, value): a capture costs as much as the scan; the key repeats every
# iteration, so it is split into layer/role/blob/what once per distinct key with DEBUG_KEY_RE.
DEBUG_RE = re.compile(rb"\] Layer ([^,\n]*, [tbp][a-z]* blob \S+ d[a-z]+): (\S+)")
DEBUG_KEY_RE = re.compile(rb"([^,\n]*), ([tbp])[a-z]* blob (\S+) (d[a-z]+)")
UPDATE_RE = re.compile(
    rb"([^,\n]*), param (?:blob )?(\S+) (?:\(owned[^)\n]*\) )?(?:data: ([^\s;]+);? ?)?(?:diff: (\S+))?"
)

# Less frequent messages, found after the glog "] " (and, for prefix-less logs, at line starts).
RARE_KEYS = (
    b"Check failed: ",
    b"Snapshotting ",
    b"Gradient clipping: ",
    b"Initializing solver from parameters:",
    b"Initializing net from parameters:",
    b"Top shape: ",
    b"Setting up ",
    b"Creating Layer ",
    b"Creating training net ",
    b"Creating test net ",
    b"with loss weight ",
    b"Restarting data prefetching",
    b"Restoring previous solver status from ",
    b"Resuming from ",
    b"Optimization Done",
    b"Optimization stopped early",
    b"Solving ",
    b"Learning Rate Policy: ",
    b"Test loss: ",
    b"Test score #",
    b"Test interrupted",
    b"[Forward] Input ",
    b"[Backward] All net params",
    b"[Update] Layer ",
    b"Unknown learning rate policy",
)

# Lines printed without any glog prefix: glibc and glog's failure handler, shells, plus fatal F lines.
RAW_KEYS = (
    b"*** ",
    b"double free or corruption",
    b"free(): ",
    b"Segmentation fault",
    b"Floating point exception",
    b"Aborted",
    b"terminate called",
)


def _alternation(keys: tuple[bytes, ...]) -> bytes:
    """Group keys by first byte so a failing branch costs one byte comparison."""
    groups: dict[int, list[bytes]] = {}
    for k in keys:
        groups.setdefault(k[0], []).append(k)
    parts = []
    for first, ks in groups.items():
        rests = sorted((re.escape(k[1:]) for k in ks), key=len, reverse=True)
        parts.append(re.escape(bytes([first])) + b"(?:" + b"|".join(rests) + b")")
    return b"(" + b"|".join(parts) + b")"


def _firsts(keys: tuple[bytes, ...], extra: bytes = b"") -> bytes:
    chars = sorted({k[0] for k in keys} | set(extra))
    return b"[" + b"".join(re.escape(bytes([c])) for c in chars) + b"]"


RARE_RE = re.compile(rb"\] +(?=" + _firsts(RARE_KEYS) + rb")" + _alternation(RARE_KEYS) + rb"([^\n]*)")
# glog mode: lines that start without a glog prefix but matter (crash output) and fatal F lines.
RAW_RE = re.compile(
    rb"\n(?:> ?)?(?=[*dfSFAt])(" + _alternation(RAW_KEYS)[1:-1] + rb"|F\d{4,8} [^\]\n]{0,80}\] )([^\n]*)"
)
# prefix-less mode: every rare key at a line start (after optional quote marker and spaces).
BARE_RE = re.compile(
    rb"\n(?:> ?)?[ \t]*(?=" + _firsts(RARE_KEYS + RAW_KEYS) + rb")" + _alternation(RARE_KEYS + RAW_KEYS) + rb"([^\n]*)"
)

# The end of a protobuf dump: the first line that is not text format (e.g. the next glog line).
BLOCK_END_RE = re.compile(rb"\n(?!(?:> ?)?+[ \t]*(?:[A-Za-z_][A-Za-z0-9_.]*[ \t]*[:{<\[]|[}>\]]|#|\r?\n|\r?$))")
QUOTE_RE = re.compile(rb"^> ?", re.MULTILINE)

RANK_RE = re.compile(rb"[\[(](\d+(?:\.\d+)?)[\])] $")
CLIP_RE = re.compile(rb"L2 norm ([^\s>]+) > ([^\s)]+)\) by scale factor ([^\s]+)")
SUMMARY_RE = re.compile(rb"L1 norm = \(([^,\s]+), ([^)\s]+)\); L2 norm = \(([^,\s]+), ([^)\s]+)\)")
NET_FILE_RE = re.compile(
    rb"(?:from net file|specified by net file|specified in (?:net_param|train_net_param|test_net_param))[: ]*(\S*)"
)
TEST_NET_RE = re.compile(rb"\(#(\d{1,20})\)")
SNAPSHOT_RE = re.compile(rb"(?:solver state )?to (?:binary proto file |HDF5 file )?(\S+)")
TOP_SHAPE_RE = re.compile(rb"([\d ]*)\((\d+)\)")
