"""Adaptive entropy coding of integer symbol streams with an ANS coder (``constriction``), record versions 2 and 3.

A stream of symbols ``0 <= s < K`` (one alphabet per stream, or per context) is coded with an *adaptive
categorical model* that learns the stream's histogram as it goes, in blocks so that it stays vectorised:

* the symbols are cut into blocks at positions ``B_j = 16 * 2**j`` (0, 16, 32, 64, ...) until blocks reach
  :data:`MAX_BLOCK` symbols, then every :data:`MAX_BLOCK`;
* block ``j`` is coded with probabilities proportional to ``PRIOR + 2**PRIOR_SHIFT * c_s`` where ``c_s`` counts
  symbol ``s`` among all earlier symbols of the stream: the decoder rebuilds the same counts as it decodes;
* ``smooth=True`` (record version 3) spreads every count over its neighbours first, with the triangular kernel
  ``T_h(d) = h + 1 - |d|`` (``|d| <= h``, cut at the alphabet's ends), ``h`` the smallest integer with
  ``4 h^2 (m + 1) >= K^2`` (``m`` symbols seen, at most ``K``): probabilities ``h + 1 + 2**PRIOR_SHIFT (T_h * c)_s``.
  The kernel narrows as the stream is learnt; a smooth histogram is learnt from far fewer symbols, which is
  what a few thousand Gaussians over a few hundred levels need (3-4% fewer bytes on fitted photos);
* the probabilities are integer-valued floats, which constriction's ``Categorical(perfect=False)`` turns into
  its exactly invertible fixed-point model (24-bit), the same on every machine.

Cost over the stream's own order-0 entropy: about ``(K / 2) log2(n)`` bits for the learning without smoothing,
nothing for a stored table. Coded words are constriction's ``AnsCoder`` compressed ``uint32`` words, little-endian.

Decoding is bounded: the symbol count is known before decoding; a payload that is not a whole number of words,
or that is not exactly used up by the declared symbols, is refused.
"""
from __future__ import annotations

import math

import numpy as np
from constriction import stream

from ..errors import RecordError

#: Largest alphabet of one model (a model holds K probabilities; the decoder refuses larger ones).
MAX_ALPHABET = 1 << 16
#: Largest block of symbols coded with one model.
MAX_BLOCK = 4096
#: First block length (blocks double up to MAX_BLOCK).
FIRST_BLOCK = 16
#: Pseudo-count of every symbol, and the weight of one observed symbol (2**PRIOR_SHIFT).
PRIOR = 1.0
PRIOR_SHIFT = 4


def blocks(n: int) -> list[tuple[int, int]]:
    """[(start, stop)] of the blocks of an n-symbol stream (see module docstring)."""
    out, start, size = [], 0, FIRST_BLOCK
    while start < n:
        stop = min(n, start + size)
        out.append((start, stop))
        start = stop
        if start >= size and size < MAX_BLOCK:
            size = min(MAX_BLOCK, start)  # doubling: block j covers [16*2**(j-1), 16*2**j)
    return out


def _stack():
    return stream.stack


def _triangle_spread(counts: np.ndarray, h: int) -> np.ndarray:
    """[K] int64: ``sum_d (h + 1 - |d|) counts[i + d]`` over ``|d| <= h`` inside the alphabet (two running sums)."""
    k = counts.size
    x = np.concatenate([np.zeros(h + 1, dtype=np.int64), counts, np.zeros(h, dtype=np.int64)])
    box = np.cumsum(x)
    box[h + 1:] -= box[:-(h + 1)].copy()  # box[j] = x[j - h] + ... + x[j]
    run = np.cumsum(box)  # sum of box[i + h + 1 .. i + 2h + 1] covers counts[i - h .. i + h] as a triangle
    return run[2 * h + 1:2 * h + 1 + k] - run[h:h + k]


def kernel_half_width(alphabet: int, seen: int) -> int:
    """h of the smoothing kernel: the smallest integer >= 0 with 4 h^2 (seen + 1) >= alphabet^2, at most K."""
    h = math.isqrt(alphabet * alphabet // (4 * (seen + 1)))
    while 4 * h * h * (seen + 1) < alphabet * alphabet:
        h += 1
    return min(h, alphabet)


def probabilities(counts: np.ndarray, smooth: bool) -> np.ndarray:
    """[K] float64 integer-valued weights of the next block's model from the counts so far ([K] int64)."""
    if not smooth:
        return PRIOR + counts.astype(np.float64) * float(1 << PRIOR_SHIFT)
    h = kernel_half_width(counts.size, int(counts.sum()))
    spread = _triangle_spread(counts, h)
    return float(h + 1) + spread.astype(np.float64) * float(1 << PRIOR_SHIFT)


def _model(counts: np.ndarray, smooth: bool):
    return stream.model.Categorical(probabilities(counts, smooth), perfect=False)


def _check_alphabet(k: int, what: str) -> None:
    if not 1 <= k <= MAX_ALPHABET:
        raise RecordError(f"{what}: alphabet of {k} symbols outside 1..{MAX_ALPHABET}")


def encode_many(streams: list[tuple[np.ndarray, int]], what: str = "stream", smooth: bool = False) -> bytes:
    """Code sub-streams ``[(symbols [n_i] in 0..K_i-1, K_i)]``, each with its own adaptive model, into one ANS
    payload (u32 LE words); sub-stream 0 decodes first. Empty sub-streams and one-symbol alphabets cost nothing.
    ``smooth``: the models spread their counts (module docstring; record version 3)."""
    AnsCoder = _stack().AnsCoder
    jobs = []
    for i, (symbols, alphabet) in enumerate(streams):
        _check_alphabet(alphabet, what)
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.size == 0:
            continue
        if int(symbols.min()) < 0 or int(symbols.max()) >= alphabet:
            raise RecordError(f"{what}: symbol outside 0..{alphabet - 1}")
        if alphabet == 1:  # every symbol is 0: nothing to code
            continue
        counts = np.zeros(alphabet, dtype=np.int64)
        for start, stop in blocks(symbols.size):
            jobs.append((symbols[start:stop].astype(np.int32), _model(counts, smooth)))
            counts += np.bincount(symbols[start:stop], minlength=alphabet)
    if not jobs:
        return b""
    coder = AnsCoder()
    for chunk, model in reversed(jobs):  # ANS is a stack: the last block goes in first
        coder.encode_reverse(chunk, model)
    return coder.get_compressed().astype("<u4").tobytes()


def decode_many(payload: bytes, shapes: list[tuple[int, int]], what: str = "stream",
                smooth: bool = False) -> list[np.ndarray]:
    """Inverse of :func:`encode_many` for sub-streams of known ``[(n_i, K_i)]``: a list of [n_i] int64 arrays.

    RecordError if the payload is not a whole number of words, is corrupt, or is not used up exactly.
    """
    AnsCoder = _stack().AnsCoder
    for _, alphabet in shapes:
        _check_alphabet(alphabet, what)
    if sum(n for n, k in shapes if k > 1) == 0:
        if payload:
            raise RecordError(f"{what}: {len(payload)} payload bytes for 0 symbols")
        return [np.zeros(n, dtype=np.int64) for n, _ in shapes]  # every symbol certain: all zeros
    if len(payload) % 4:
        raise RecordError(f"{what}: payload of {len(payload)} bytes is not a whole number of words")
    # Empty when every symbol was certain (one-symbol alphabets).
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    if words.size and words[-1] == 0:
        raise RecordError(f"{what}: malformed ANS payload (last word is zero)")
    outs = []
    try:
        coder = AnsCoder(words)
        for n, alphabet in shapes:
            if alphabet == 1:
                outs.append(np.zeros(n, dtype=np.int64))
                continue
            out = np.empty(n, dtype=np.int64)
            counts = np.zeros(alphabet, dtype=np.int64)
            for start, stop in blocks(n):
                got = np.asarray(coder.decode(_model(counts, smooth), stop - start), dtype=np.int64)
                out[start:stop] = got
                counts += np.bincount(got, minlength=alphabet)
            outs.append(out)
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise RecordError(f"{what}: corrupt ANS payload ({exc})") from None
    if not coder.is_empty():
        raise RecordError(f"{what}: ANS payload holds more data than its symbols")
    return outs


def encode(symbols: np.ndarray, alphabet: int, what: str = "stream", smooth: bool = False) -> bytes:
    """One stream of ``symbols`` ([n] integers in 0..alphabet-1); returns the payload (u32 LE words)."""
    return encode_many([(symbols, alphabet)], what, smooth)


def decode(payload: bytes, n: int, alphabet: int, what: str = "stream", smooth: bool = False) -> np.ndarray:
    """Inverse of :func:`encode`: [n] int64 symbols."""
    return decode_many(payload, [(n, alphabet)], what, smooth)[0]
