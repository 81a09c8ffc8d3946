"""The command lines: the main() behind each tools/*.py, train.py and train_async.py (``train``), and
the checkpoint converters (``convert_checkpoint``). Each parses its options, calls the packages and
turns their errors into messages and exit statuses.

May import: every other package. Nothing imports it."""
