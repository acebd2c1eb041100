"""Tool agents for notebook 10 (scaling out): a module of its own, because a Ray worker imports an agent by its
path (`scaling_tools:count_primes`), and an agent defined in a notebook cell has no path another process can follow.

The notebook's directory is on the path of a local Ray's workers (Ray adds the driver's working directory); on a
cluster, ship this file with `runtime_env={"py_modules": [scaling_tools]}`.
"""

from __future__ import annotations

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.messages import TextMessage


class PrimeCount(TextMessage):
    """How many primes there are in `[lo, hi)`: a message class the workers and the notebook both import."""

    lo: int
    hi: int
    count: int


def is_prime(n: int) -> bool:
    """Trial division: slow on purpose (pure Python, it holds the GIL the whole time)."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


@miniagent
async def count_primes(ctx: InteractionContext, lo: int, hi: int) -> None:
    """A CPU-bound tool agent: counts the primes in `[lo, hi)`."""
    if lo > hi:
        raise ValueError(f"empty range: lo={lo:,} is above hi={hi:,}")
    count = sum(1 for n in range(lo, hi) if is_prime(n))
    ctx.reply(PrimeCount(content=f"{count:,} primes in [{lo:,}, {hi:,})", lo=lo, hi=hi, count=count))


@miniagent
async def split_count(ctx: InteractionContext, lo: int, hi: int, chunks: int = 2) -> None:
    """Counts the primes in `[lo, hi)` in `chunks` calls of `count_primes`, made (and run) where this agent runs."""
    step = (hi - lo) // chunks
    for i in range(chunks):
        ctx.reply(count_primes.trigger(lo=lo + i * step, hi=lo + (i + 1) * step))
