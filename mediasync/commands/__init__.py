"""The subcommands, one module each; ``cli.py`` parses the command line and calls them.

Every command module offers ``HELP`` (its line in ``--help``), ``add_arguments(parser)``
and ``main(args) -> int`` (an exit code from ``common``). What several of them need
(exit codes, error lines, a client, the state database) lives in ``common`` so that
no command reaches into another.
"""
