"""Release one model: results/release/<model>/ with its files, generation config, model card
(README.md), EU AI Act training-content summary and provenance.json, checked before it is
published (loaded, chat template rendered, a few tokens generated, checksums verified); any
failure leaves nothing there (zflow.release.build)."""

from __future__ import annotations

import sys
from pathlib import Path

from zflow.io import spec_cli
from zflow.release import ReleaseError, build


def main(argv=None) -> None:
    spec, args = spec_cli(__doc__, argv)
    try:
        out = build(spec, code_dir=Path(__file__).resolve().parent,
                    log=lambda m: print(m, file=sys.stderr, flush=True))
    except ReleaseError as e:
        print(f"error: release of {spec['model']} stopped: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{spec['output']}: {len(out['files'])} files, {out['evals']} eval results, "
          f"{len(out['missing'])} summary fields missing", file=sys.stderr)


if __name__ == "__main__":
    main()
