"""``python -m msabench.cli``: the ``msabench`` command."""

from msabench.cli import main

raise SystemExit(main())
