"""Reading a compiled program's HLO: which collectives sit inside which loops.

A test helper, not a test. A data-parallel step needs one collective per step, the gradient's
mean; one inside a loop of the step (a recurrent network's time loop, forward or backward) is
paid at every iteration, and on several hosts it crosses the network each time.
"""

import re

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")
_CALLED = re.compile(r"(?:body|condition|to_apply|calls|branch_computations)=\{?([%\w.\-, ]+)\}?")
_WHILE = re.compile(r" while\(.*body=%?([\w.\-]+)")
_COLLECTIVE = re.compile(r" (" + "|".join(COLLECTIVES) + r")(?:-start)?\(")


def computations(hlo: str) -> dict[str, list[str]]:
    """The lines of each computation of `hlo` (the text of `compiled.as_text()`), by name."""
    found, name = {}, None
    for line in hlo.splitlines():
        if name is None:
            match = _COMPUTATION.match(line)
            if match:
                name = match[1]
                found[name] = []
        elif line == "}":
            name = None
        else:
            found[name].append(line)
    return found


def _called(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        for group in _CALLED.findall(line):
            names.update(n.strip().lstrip("%") for n in group.split(",") if n.strip())
    return names


def _reachable(start: str, comps: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen and name in comps:
            seen.add(name)
            todo.extend(_called(comps[name]))
    return seen


def loop_bodies(comps: dict[str, list[str]], within: str) -> list[str]:
    """The bodies of the while loops that computation `within` runs, directly or through the
    computations it calls."""
    bodies = []
    for name in _reachable(within, comps):
        bodies += [m[1] for line in comps[name] if (m := _WHILE.search(line))]
    return bodies


def collectives_in_inner_loops(hlo: str) -> list[str]:
    """The collectives inside loops nested in the program's outer loops: for a chunk of
    training steps (a scan over steps), those inside the step's own loops (over time)."""
    comps = computations(hlo)
    entry = next(
        name for name in comps if hlo.count(f"ENTRY %{name} ") or hlo.count(f"ENTRY {name} ")
    )
    found = []
    for outer in loop_bodies(comps, entry):
        for inner in loop_bodies(comps, outer):
            for name in _reachable(inner, comps):
                found += [f"{name}: {line.strip()[:160]}" for line in comps[name]
                          if _COLLECTIVE.search(line)]  # fmt: skip
    return sorted(set(found))


def collectives(hlo: str) -> list[str]:
    """Every collective instruction of `hlo`, one line each."""
    return [line.strip()[:160] for line in hlo.splitlines() if _COLLECTIVE.search(line)]
