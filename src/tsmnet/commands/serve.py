"""``tsmnet serve``: serve one causal TSM model over HTTP and WebSocket.

Streams (``/v1/stream``, one WebSocket per camera) each keep their own shift buffers and are
stepped together in batches of up to --max-batch frames, waiting at most --max-delay-ms for a
batch to fill; uploads (``POST /v1/classify``) are scored as ``tsmnet predict`` scores a file;
``GET /`` is a page that classifies the browser's camera live. The model comes through the
same loader as ``tsmnet predict``'s (``--model``, ``--weights``); ``--runtime`` and
``--precision`` choose what runs it: the uploads as ``tsmnet predict --runtime`` runs them,
and with ``onnxruntime`` or ``openvino`` the streams' step too, exported with a causal shift
(``compile`` steps the streams eagerly). Needs the ``serve`` extra (``pip install
tsmnet[serve]``). See docs/serve.md.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from .errors import CommandError
from .options import add_model, add_runtime, add_threads, add_weights, predictor, threads

# the network of TSM's online demo (shift_mode is made causal for the stream)
DEFAULT_MODEL = 'tsm_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-100e_kinetics400-rgb'


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        'serve', help='serve a model: live WebSocket streams, uploads, a camera page',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model(parser, what='a zoo model (with --weights only when the checkpoint does not '
              f'describe its model; alone: its published weights; default: {DEFAULT_MODEL})')
    add_weights(parser, 'a checkpoint or saved-model folder (what tsmnet finetune or tsmnet.save '
                'wrote), or a URL; streams run it with a causal shift (a warning when it was '
                'trained bidirectionally)')
    parser.add_argument('--labels', help='class names, one a line')
    add_runtime(parser, 'the model (the uploads; the streams too under onnxruntime and '
                        'openvino)')
    parser.add_argument('--calibration', metavar='DIR',
                        help='videos that calibrate --precision int8')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to listen on (default: 127.0.0.1, this machine only)')
    parser.add_argument('--port', type=int, default=8000, help='TCP port (default: 8000)')
    parser.add_argument('--max-streams', type=int, default=16,
                        help='WebSocket streams open at once; more are refused (default: 16)')
    parser.add_argument('--max-batch', type=int, default=16,
                        help='frames per model step (default: 16)')
    parser.add_argument('--max-delay-ms', type=float, default=5.0,
                        help='how long a frame may wait for others to join its step '
                             '(default: 5)')
    parser.add_argument('--max-upload-mb', type=float, default=100.0,
                        help='largest upload to /v1/classify in MiB (default: 100)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    add_threads(parser)
    parser.add_argument('--log-level', default='info',
                        choices=('critical', 'error', 'warning', 'info', 'debug'))
    parser.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    """Every limit in range, before a model is built."""
    for name in ('max_streams', 'max_batch'):
        if getattr(args, name) < 1:
            raise CommandError(f'--{name.replace("_", "-")} must be >= 1, got '
                               f'{getattr(args, name)}')
    if not 0 <= args.max_delay_ms <= 1000:
        raise CommandError(f'--max-delay-ms must be within 0..1000, got {args.max_delay_ms}')
    if not 0 < args.max_upload_mb <= 16384:
        raise CommandError(f'--max-upload-mb must be within 0..16384, got {args.max_upload_mb}')
    if not 0 <= args.port <= 65535:
        raise CommandError(f'--port must be within 0..65535, got {args.port}')
    if args.threads is not None and args.threads < 1:
        raise CommandError(f'--threads must be >= 1, got {args.threads}')


def run(args: argparse.Namespace) -> int:
    check_args(args)
    try:
        from tsmnet import serve
    except ImportError as err:
        raise CommandError(f'tsmnet serve needs the serve extra (pip install '
                           f'"tsmnet[serve]"): {err}') from None
    logging.basicConfig(level=args.log_level.upper(), format='%(levelname)s: %(message)s')
    name = args.model or (None if args.weights else DEFAULT_MODEL)
    with threads(args.threads):
        return _serve(args, serve, name)


def _serve(args: argparse.Namespace, serve: Any, name: str | None) -> int:
    scorer = predictor(name, args.weights, args.labels, device=args.device,
                       runtime=args.runtime, precision=args.precision,
                       calibration=args.calibration, threads=args.threads)
    name = name or args.weights
    step, stream_runtime = None, 'eager'
    if args.runtime in ('onnxruntime', 'openvino'):  # the streams' step too, from that model
        from tsmnet.predictor import exported_step
        from tsmnet.serve.frames import stream_input_size

        try:
            step = exported_step(scorer.model, stream_input_size(scorer.protocol),
                                 args.precision, args.calibration, args.threads, args.runtime)
        except ValueError as err:
            raise CommandError(f'--runtime/--precision: {err}') from None
        stream_runtime = f'{args.runtime} {args.precision or "fp32"}'
    config = serve.ServeConfig(model_name=name, max_streams=args.max_streams,
                               max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
                               max_upload_bytes=int(args.max_upload_mb * 2**20),
                               runtime=scorer.runtime, precision=scorer.precision,
                               stream_runtime=stream_runtime)
    try:
        app = serve.create_app(scorer, config, step)
    except (TypeError, ValueError) as err:
        raise CommandError(f'{name} cannot be served frame by frame: {err}') from None
    print(f'serving {name} on http://{args.host}:{args.port} (camera page: /, streams: '
          f'/v1/stream, uploads: /v1/classify)', flush=True)
    try:
        serve.run(app, args.host, args.port, args.log_level)
    except KeyboardInterrupt:  # uvicorn shut down cleanly on Ctrl-C, then raises it again
        pass
    print('stopped', flush=True)
    return 0
