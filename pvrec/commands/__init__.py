"""One thin module per subcommand: arguments -> options -> one core call -> the summary line.

cli.py lists them; each has DESCRIPTION (and EPILOG), register(parser) and run(args).
"""
