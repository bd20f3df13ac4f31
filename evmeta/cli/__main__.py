"""``python -m evmeta.cli``: the same as the ``evmeta`` command."""

from evmeta.cli import main

main()
