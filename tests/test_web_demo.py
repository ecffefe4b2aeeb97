"""tools/web_demo.py: the page driven as a person would, in Chromium (selenium), and its parts without a browser.

The browser tests start the demo as a subprocess on a free loopback port with a tiny checkpoint, upload a photo,
pick an affordance, wait for the answer, and check the overlay pictures and the downloaded JSON against
``inference_affordance`` run here on the same file (the JSON byte for byte against ``tools/infer.py``'s own
``write_json``); a bad upload must give a message on the page and leave the server serving. They need Gradio
(``requirements/optional.txt``), selenium (``requirements/tests.txt``), Debian's ``chromium`` and
``chromium-driver`` (``.ci/run`` installs them), and are skipped, with the reason, only when one is missing.

``LOOPTRANS_WEB_DEMO_SCREENSHOT=docs/images/web_demo.png`` makes the browser test also save its screenshot
there, shrunk for the docs.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from typing import Dict, List, Optional, Tuple

import cv2
import mmcv
import numpy as np
import pytest
import torch
from conftest import QUICK_CONFIG, REPO, TINY_MODEL, load_tool, save_tiny_checkpoint, tool_env
from PIL import Image

from looptrans.apis import inference_affordance, init_model, load_image
from looptrans.apis.serving import inspect_image_file, overlay_picture, result_json
from looptrans.testing.synthetic_agd20k import make_rng, render_egocentric

web_demo = load_tool('web_demo.py')
TOOL = osp.join(REPO, 'tools', 'web_demo.py')
OPTIONS = [f'{k}={v}' for k, v in TINY_MODEL.items()]
#: Where Debian puts Chromium and its driver; PATH is searched as well.
BROWSERS = ('/usr/bin/chromium', 'chromium', 'chromium-browser', 'google-chrome')
DRIVERS = ('/usr/bin/chromedriver', 'chromedriver')
CHROME_FLAGS = (
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--window-size=1400,1500',
)
#: A URL the page may load: the demo's own server (or the browser's internal pages and data URLs).
LOCAL_HOSTS = ('127.0.0.1', 'localhost', '[::1]')


def _randomise(model: torch.nn.Module) -> None:
    """Classifiers with non-tiny weights, so that heatmaps and probabilities differ across classes and pixels."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for conv in {model.cam_head.conv_seg, model.pixel_head.classifier}:  # one conv when the pixel head borrows
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * 0.3)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=gen))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('web_ckpt') / 'tiny.pth'), prepare=_randomise)


@pytest.fixture(scope='module')
def model(checkpoint):
    return init_model(QUICK_CONFIG, checkpoint, cfg_options=dict(TINY_MODEL))


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> Dict[str, str]:
    """A photo (JPEG of a generated mug), uploads that must be refused, and ones that are converted."""
    folder = tmp_path_factory.mktemp('uploads')
    image, _ = render_egocentric('hold', 'cup', make_rng(7, 'web_demo_test'), (240, 300))
    paths = {'photo': str(folder / 'mug.jpg')}
    cv2.imwrite(paths['photo'], image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    paths['not_an_image'] = str(folder / 'not_an_image.jpg')  # an HTML error page saved as .jpg
    with open(paths['not_an_image'], 'w') as f:
        f.write('<html><body>404 Not Found</body></html>\n')
    paths['empty'] = str(folder / 'empty.png')
    open(paths['empty'], 'wb').close()
    paths['zero'] = str(folder / 'zero.png')
    _write_png(paths['zero'], 0, 0)
    paths['huge'] = str(folder / 'huge.png')
    _write_png(paths['huge'], 20000, 20000)
    paths['cmyk'] = str(folder / 'cmyk.jpg')
    Image.fromarray(mmcv.bgr2rgb(image)).convert('CMYK').save(paths['cmyk'], quality=92)
    paths['deep'] = str(folder / 'deep.png')
    cv2.imwrite(paths['deep'], image.astype(np.uint16) * 257 + 100)
    return paths


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_png(path: str, width: int, height: int) -> None:
    """A black 8-bit gray PNG of any size, written row by row (a 20000 x 20000 one is ~400 KB on disk, 400 MB
    decoded: never held in memory here)."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + the pixels
    idat = b''.join(packer.compress(row) for _ in range(height)) + packer.flush()
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n')
        f.write(_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)))
        f.write(_chunk(b'IDAT', idat))
        f.write(_chunk(b'IEND', b''))


def _reference(model, path: str, affordances, top_k: Optional[int]) -> Tuple[object, str]:
    """What tools/infer.py computes and writes for ``path`` (its calls, here in the test process): the result
    and its JSON text, with the JSON's ``image`` set to the file name the page reports."""
    image_bgr = load_image(path)[0]
    result = inference_affordance(model, [image_bgr], affordances, 8, top_k=top_k, threshold=0.5)[0]
    result.image_path = osp.basename(path)
    return result, json.dumps(result.to_dict(), indent=1)


# ------------------------------------------------------------------ without a browser
def test_the_page_gives_what_infer_writes(model, files, tmp_path):
    """The JSON file is tools/infer.py's, byte for byte; each overlay is infer's _overlay.jpg picture (written
    by infer's own functions)."""
    infer = load_tool('infer.py')
    analyse = web_demo.DemoAnalyser(model, str(tmp_path))
    status, pictures, table, probs, json_path, shown = analyse(files['photo'], web_demo.TOP_K, 3)
    assert 'done' in status and 'mug.jpg' in status and 'top 3 of 7' in status, status
    result, expected = _reference(model, files['photo'], None, 3)
    infer.write_json(str(tmp_path / 'mug'), result)
    with open(json_path) as page, open(tmp_path / 'mug.json') as tool:
        assert page.read() == tool.read() == expected
    assert osp.basename(json_path) == 'mug.json' and shown == json.loads(expected)
    assert probs == result.probs and len(pictures) == 2 * len(result.affordances) == 6
    # infer.py's overlay, JPEG-encoded as it writes it, equals the page's picture encoded the same way
    infer.write_outputs(str(tmp_path / 'mug'), mmcv.bgr2rgb(load_image(files['photo'])[0]), result.heatmaps, 0.5)
    for i, name in enumerate(result.affordances):
        picture, caption = pictures[2 * i]
        assert caption.startswith(f'{name}: p = ')
        mmcv.imwrite(mmcv.rgb2bgr(picture), str(tmp_path / 'page.jpg'))
        with open(tmp_path / 'page.jpg', 'rb') as page, open(tmp_path / f'mug_{name}_overlay.jpg', 'rb') as tool:
            assert page.read() == tool.read(), name
        region = result.regions[name]
        assert f'| {name} | {result.probs[name]:.4f} | {tuple(region.peak)} |' in table


@pytest.mark.parametrize(
    'key, message',
    [
        ('not_an_image', 'cannot decode image'),
        ('empty', 'the file is empty'),
        ('zero', 'no pixels (0 x 0)'),
        ('huge', 'too large: 20000 x 20000 = 400.0 MP'),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(model, files, tmp_path, key, message):
    status, *outputs = web_demo.DemoAnalyser(model, str(tmp_path))(files[key], 'hold', 3)
    name = osp.basename(files[key])
    assert status.startswith('Run 1: **Cannot use `' + name + '`:**') and message in status, status
    assert files[key] not in status  # the server's temporary path is not shown, the file's name is
    assert outputs == [None, '', None, None, None]


@pytest.mark.parametrize('key, note', [('cmyk', 'CMYK: converted to RGB'), ('deep', '16 bits per channel')])
def test_converted_uploads_work_and_say_so(model, files, tmp_path, key, note):
    status, _, _, _, json_path, _ = web_demo.DemoAnalyser(model, str(tmp_path))(files[key], 'hold', 3)
    assert 'done' in status and note in status, status
    _, expected = _reference(model, files[key], ['hold'], None)
    with open(json_path) as f:
        assert f.read() == expected


def test_missing_choices_are_answered(model, files, tmp_path):
    analyse = web_demo.DemoAnalyser(model, str(tmp_path))
    assert 'Upload a photo' in analyse(None, 'hold', 3)[0]
    assert 'unknown affordance' in analyse(files['photo'], 'fly', 3)[0]
    assert 'k must be between 1 and 7' in analyse(files['photo'], web_demo.TOP_K, 9)[0]
    assert analyse.runs == 3


def test_inspect_image_file_reads_only_the_header(files, tmp_path):
    info = inspect_image_file(files['photo'])
    height, width = load_image(files['photo'])[0].shape[:2]
    assert (info.width, info.height, info.format, info.mode, info.notes) == (width, height, 'JPEG', 'RGB', [])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the tools use the pixels as stored
    Image.open(files['photo']).save(tmp_path / 'rotated.jpg', exif=exif)
    assert any('EXIF orientation 6' in n for n in inspect_image_file(tmp_path / 'rotated.jpg').notes)
    with pytest.raises(ValueError, match='at most 0.0 MP'):
        inspect_image_file(files['photo'], max_pixels=10)


def test_overlay_picture_and_result_json_are_infers(model, files, tmp_path):
    result, expected = _reference(model, files['photo'], ['hold'], None)
    assert result_json(result) == expected
    rgb = mmcv.bgr2rgb(load_image(files['photo'])[0])
    assert overlay_picture(rgb, result.heatmaps['hold'], 'hold').shape == rgb.shape


def test_shrink_for_display():
    small = np.zeros((300, 200, 3), np.uint8)
    assert web_demo.shrink_for_display(small) is small
    assert web_demo.shrink_for_display(np.zeros((4000, 3000, 3), np.uint8)).shape == (1280, 960, 3)


def test_without_gradio_one_line_says_how_to_install(tmp_path):
    shim = tmp_path / 'shim'
    shim.mkdir()
    (shim / 'gradio.py').write_text("raise ModuleNotFoundError(\"No module named 'gradio'\", name='gradio')\n")
    proc = subprocess.run(
        [sys.executable, TOOL, QUICK_CONFIG, 'no.pth'],
        cwd=REPO,
        env=tool_env(PYTHONPATH=str(shim)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [web_demo.INSTALL_HINT], proc.stderr
    assert 'pip install -r requirements/optional.txt' in proc.stderr


# ------------------------------------------------------------------ in Chromium
def _find(names) -> Optional[str]:
    for name in names:
        found = name if osp.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> bytes:
    """GET from the demo's server, never through a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope='module')
def server(checkpoint, tmp_path_factory):
    """The demo, as a person starts it, on a free loopback port; stopped (SIGTERM) at the end."""
    pytest.importorskip('gradio', reason='gradio (requirements/optional.txt) is not installed')
    port = _free_port()
    log_path = tmp_path_factory.mktemp('web_demo_log') / 'server.log'
    log = open(log_path, 'w')
    cmd = [sys.executable, TOOL, QUICK_CONFIG, checkpoint, '--port', str(port), '--cfg-options', *OPTIONS]
    proc = subprocess.Popen(cmd, cwd=REPO, env=tool_env(), stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.time() + 180
    while True:
        if proc.poll() is not None:
            pytest.fail(f'the demo exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}')
        try:
            _get(url, timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail(f'the demo did not answer in 180 s:\n{log_path.read_text()[-4000:]}')
            time.sleep(0.5)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope='module')
def browser():
    """Headless Debian Chromium through chromedriver, logging every request the page makes."""
    chromium, driver = _find(BROWSERS), _find(DRIVERS)
    if not chromium or not driver:
        pytest.skip(
            f'no Chromium browser ({chromium or "none of " + ", ".join(BROWSERS)}) and chromedriver '
            f'({driver or "none of " + ", ".join(DRIVERS)}) found; install: apt-get install chromium chromium-driver'
        )
    webdriver = pytest.importorskip('selenium.webdriver', reason='selenium (requirements/tests.txt) is not installed')
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix='looptrans_chromium_')
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f'--user-data-dir={profile}'):
        options.add_argument(flag)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(driver), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _by():
    from selenium.webdriver.common.by import By

    return By


def _wait(driver, condition, timeout: float = 90, what: str = ''):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message=what)


def _text(driver, selector: str) -> str:
    """The text of the element, white space collapsed (inline code and table cells become single spaces)."""
    return ' '.join(driver.find_element(_by().CSS_SELECTOR, selector).text.split())


def _status(driver) -> str:
    return _text(driver, '#status')


def _upload(driver, path: str) -> None:
    """Put ``path`` in the photo field (clearing the one there), as choosing it in the file dialog does."""
    by = _by()
    clear = driver.find_elements(by.CSS_SELECTOR, '#photo button[aria-label="Clear"]')
    if clear:
        clear[0].click()
    field = _wait(driver, lambda d: d.find_elements(by.CSS_SELECTOR, '#photo input[type=file]'), 30, 'upload field')
    field[0].send_keys(path)
    name = osp.basename(path)
    shown = lambda d: name in ''.join(d.find_element(by.CSS_SELECTOR, '#photo').text.split())  # noqa: E731
    _wait(driver, shown, 30, f'{name} uploaded')  # the field shows the stem and the suffix apart


def _choose(driver, choice: str) -> None:
    """Pick ``choice`` in the affordance list: type it, then Enter (as a person filters the list)."""
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(_by().CSS_SELECTOR, '#affordance input')
    field.click()
    field.send_keys(Keys.CONTROL, 'a')
    field.send_keys(choice)
    field.send_keys(Keys.ENTER)
    _wait(driver, lambda d: field.get_attribute('value') == choice, 10, f'{choice} chosen')


def _run(driver) -> str:
    """Press the button and return the new status line (each answer is numbered, so a new one is seen)."""
    before = _status(driver)
    # waited for, not assumed: under load the page may still be rendering the button after an upload
    button = _wait(driver, lambda d: d.find_elements(_by().CSS_SELECTOR, '#run'), 30, 'the run button')
    button[0].click()

    def answered(d) -> bool:
        status = _status(d)
        return status != before and status.startswith('Run ') and ('done' in status or 'Cannot' in status)

    _wait(driver, answered, what='the answer')
    return _status(driver)


def _pictures(driver, count: int) -> List[np.ndarray]:
    """The gallery's pictures as served (RGB), once ``count`` of them are shown."""
    by = _by()
    _wait(driver, lambda d: len(d.find_elements(by.CSS_SELECTOR, '#pictures img')) == count, 30, f'{count} pictures')
    out = []
    for img in driver.find_elements(by.CSS_SELECTOR, '#pictures img'):
        data = np.frombuffer(_get(img.get_attribute('src')), np.uint8)
        out.append(mmcv.bgr2rgb(cv2.imdecode(data, cv2.IMREAD_COLOR)))
    return out


def _json_download(driver, name: str) -> str:
    """The text behind the JSON field's download link (the file the browser saves as ``name``)."""
    by = _by()
    links = _wait(
        driver,
        lambda d: [a for a in d.find_elements(by.CSS_SELECTOR, '#json-file a') if a.get_attribute('download') == name],
        30,
        f'{name} download link',
    )
    return _get(links[0].get_attribute('href')).decode()


def _outside_requests(driver) -> List[str]:
    """URLs the page asked for that are not on this machine (fonts, CDNs, analytics would be)."""
    urls = []
    for entry in driver.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            url = message['params']['request']['url']
            scheme, _, rest = url.partition('://')
            host = rest.split('/', 1)[0].rsplit(':', 1)[0] if rest else ''
            if scheme in ('http', 'https', 'ws', 'wss') and host not in LOCAL_HOSTS:
                urls.append(url)
    return urls


def _save_screenshot(driver, path: str) -> None:
    driver.save_screenshot(path)
    target = os.environ.get('LOOPTRANS_WEB_DEMO_SCREENSHOT')
    if target:  # for the docs: at most 1000 px wide, a 256-colour PNG
        shot = Image.open(path).convert('RGB')
        width = min(1000, shot.width)
        shot = shot.resize((width, round(shot.height * width / shot.width)), Image.LANCZOS)
        shot.quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


@pytest.mark.slow
def test_browser_upload_pick_and_read_the_answer(server, browser, model, files, tmp_path):
    browser.get(server)
    _wait(browser, lambda d: d.find_elements(_by().CSS_SELECTOR, '#photo input[type=file]'), 60, 'the page')
    assert 'LoopTrans affordance grounding' in browser.title
    _upload(browser, files['photo'])
    rgb = mmcv.bgr2rgb(load_image(files['photo'])[0])

    # one affordance, picked from the model's list
    _choose(browser, 'hold')
    status = _run(browser)
    assert f'done: mug.jpg ({rgb.shape[1]} x {rgb.shape[0]} px), affordance hold' in status, status
    result, expected = _reference(model, files['photo'], ['hold'], None)
    overlay, region = _pictures(browser, 2)
    np.testing.assert_array_equal(overlay, overlay_picture(rgb, result.heatmaps['hold'], 'hold'))
    np.testing.assert_array_equal(region, web_demo.regions_picture(rgb, result.regions['hold'], 'hold'))
    assert _json_download(browser, 'mug.json') == expected

    # the three most probable ones
    _choose(browser, web_demo.TOP_K)
    status = _run(browser)
    assert 'top 3 of 7' in status, status
    result, expected = _reference(model, files['photo'], None, 3)
    pictures = _pictures(browser, 6)
    for i, name in enumerate(result.affordances):
        np.testing.assert_array_equal(pictures[2 * i], overlay_picture(rgb, result.heatmaps[name], name))
    _wait(browser, lambda d: _json_download(d, 'mug.json') == expected, 30, 'the top-3 JSON')
    table, probs = _text(browser, '#regions-table'), _text(browser, '#probs')
    for name in result.affordances:
        region = result.regions[name]
        assert f'{name} {result.probs[name]:.4f} {tuple(region.peak)} {region.peak_score:.4f}' in table, table
    for name, prob in result.probs.items():  # every class's probability, in percent
        assert f'{name} {round(100 * prob)}%' in probs, probs
    _save_screenshot(browser, str(tmp_path / 'web_demo.png'))
    assert _outside_requests(browser) == []


@pytest.mark.slow
def test_browser_bad_upload_gives_a_message_and_the_server_goes_on(server, browser, files):
    browser.get(server)
    _wait(browser, lambda d: d.find_elements(_by().CSS_SELECTOR, '#photo input[type=file]'), 60, 'the page')
    for key, message in (('not_an_image', 'cannot decode image'), ('huge', 'too large: 20000 x 20000')):
        _upload(browser, files[key])
        status = _run(browser)
        assert f'Cannot use {osp.basename(files[key])} :' in status and message in status, status
        assert browser.find_elements(_by().CSS_SELECTOR, '#pictures img') == []
    assert _get(server, timeout=10)  # the server still answers
    _upload(browser, files['photo'])
    assert 'done' in _run(browser)  # and still computes
