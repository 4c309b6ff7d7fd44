"""The camera page in a real headless browser: Debian's Chromium with a fake camera that plays
a Y4M file this test writes, driven by Playwright. The page opens the camera, streams it to the
server, and shows the predicted labels, their bars and the frame rate; a screenshot is kept."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_serve import LABELS, tiny_predictor
from video_files import moving_frames

from tsmnet.serve import BackgroundServer, ServeConfig, create_app

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
         '--use-fake-ui-for-media-stream']
LOGGER = logging.getLogger(__name__)


def write_y4m(path: Path, frames: np.ndarray, rate: int = 15) -> Path:
    """``[F, H, W, 3]`` uint8 RGB as a YUV4MPEG2 file (4:2:0, BT.601 limited range), what
    Chromium's fake camera plays."""
    rgb = frames.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    f, h, w = frames.shape[:3]

    def plane(x: np.ndarray) -> bytes:
        return np.clip(np.round(x), 0, 255).astype(np.uint8).tobytes()

    def half(x: np.ndarray) -> np.ndarray:  # 2x2 means: 4:2:0 chroma
        return x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    with path.open('wb') as out:
        out.write(f'YUV4MPEG2 W{w} H{h} F{rate}:1 Ip A1:1 C420jpeg\n'.encode())
        for i in range(f):
            out.write(b'FRAME\n' + plane(y[i]) + plane(half(u[i])) + plane(half(v[i])))
    return path


@pytest.mark.slow
def test_camera_page_shows_live_labels(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip('Chromium is not installed (apt-get install -y chromium)')
    from playwright.sync_api import sync_playwright

    camera = write_y4m(tmp_path / 'camera.y4m', moving_frames(30, 120, 160, seed=7))
    artifacts = Path(os.environ.get('TSMNET_TEST_ARTIFACTS', tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    app = create_app(tiny_predictor(), ServeConfig(model_name='tiny ResNet-18-TSM'))
    with BackgroundServer(app) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*FLAGS, f'--use-file-for-fake-video-capture={camera}'])
        try:
            page = browser.new_page(viewport={'width': 900, 'height': 520})
            console: list[str] = []
            page.on('console', lambda message: console.append(message.text))
            page.goto(f'{server.url}/')
            page.wait_for_function(
                "Number(document.getElementById('frame').textContent) >= 15", timeout=120_000)
            labels = page.locator('#top .label').all_text_contents()
            probs = page.locator('#top .prob').all_text_contents()
            widths = page.locator('#top .fill').evaluate_all(
                'bars => bars.map(bar => parseFloat(bar.style.width))')
            fps = float(page.text_content('#fps'))
            status = page.text_content('#status')
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / 'serve_page.png'))
            LOGGER.info('screenshot: %s', artifacts / 'serve_page.png')
        finally:
            browser.close()
    assert status == 'streaming', (status, console)
    assert len(set(labels)) == 3 and set(labels) <= set(LABELS), labels
    values = [float(p.rstrip(' %')) for p in probs]
    assert values == sorted(values, reverse=True) and 100 / len(LABELS) < values[0] <= 100
    np.testing.assert_allclose(widths, values, atol=0.051)  # the bars show the numbers
    assert fps > 0
