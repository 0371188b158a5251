"""Opt one trusted legacy checkpoint file in: rewrite it as weights-only data.

Example::

    python tools/convert/trust_checkpoint.py old_run/epoch_12.pth \\
        old_run/epoch_12.safe.pth

``import stadapter_mm`` makes every mmengine checkpoint load with
``weights_only=True`` and allow-lists only the plain types an mmengine
checkpoint carries. A checkpoint written by older software can hold more
(e.g. mmengine < our fix pickled ``HistoryBuffer`` statistics *functions*);
loading it then fails and the error names this tool. Run it on the one file
whose origin you trust: it is unpickled once with ``weights_only=False``
(which can run code carried by the file), its metadata becomes plain data,
the log history is dropped if it still needs code, and the result is written
next to it. Every tool then loads the new file the safe way; nothing about
the process-wide loader changes.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

import stadapter_mm  # noqa: F401  (HistoryBuffer pickles without functions)
from stadapter_mm.checkpoints.portable import (load_trusted, plain_data,
                                               save_portable)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(
        description='Rewrite ONE trusted checkpoint so that it loads with '
        'weights_only=True (unpickles it once with its code).')
    parser.add_argument('in_file', help='the trusted legacy checkpoint')
    parser.add_argument('out_file', help='where to write the converted file')
    args = parser.parse_args(argv)

    checkpoint = load_trusted(args.in_file)
    checkpoint['meta'] = plain_data(checkpoint.get('meta') or {})
    dropped = []
    try:
        size = save_portable(checkpoint, args.out_file)
    except ValueError:
        # Only the log history can still carry objects needing code.
        if checkpoint.pop('message_hub', None) is not None:
            dropped.append('message_hub (log history)')
        size = save_portable(checkpoint, args.out_file)
    print(f'wrote {args.out_file} ({size / 2**20:.1f} MiB, loads with '
          f'weights_only=True)'
          + (f'; dropped {", ".join(dropped)}' if dropped else ''))


if __name__ == '__main__':
    main()
