"""A data plane run from another source tree, for before/after benchmarks:

    SLUICE_BENCH_TREE=/tmp/sluice-before python -m bench.from_tree [data-plane args]

The tree (a `git worktree` of an earlier commit) comes first on the import path, so
its `data_plane` and `shared` are the ones that run.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    tree = os.environ["SLUICE_BENCH_TREE"]
    sys.path[:] = [tree, *(p for p in sys.path if p not in ("", os.getcwd()))]
    from data_plane.__main__ import main as data_plane

    assert data_plane.__module__ == "data_plane.__main__"
    assert sys.modules["data_plane"].__file__ is not None
    assert sys.modules["data_plane"].__file__.startswith(tree), "not the tree's data plane"
    data_plane(sys.argv[1:])


if __name__ == "__main__":
    main()
