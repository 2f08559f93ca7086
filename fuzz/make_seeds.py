#!/usr/bin/env python3
"""Writes the generated seeds of the fuzz targets. Run from anywhere:

    fuzz/make_seeds.py --jwt            # (re)writes the token seeds of fuzz/corpus/jwt (committed)
    fuzz/make_seeds.py --media DIR      # writes tiny media files into DIR (never committed)

Hand-written seeds and regression inputs are committed as they are; --jwt only rewrites the files
it names. The media seeds are synthetic (a sine tone, a test-pattern frame) made by the ffmpeg CLI
at run time, like the test fixtures: scripts/run-fuzzers writes them into
build-fuzz/seeds/media_probe and gives that directory to the media_probe target beside
fuzz/corpus/media_probe. Needs the openssl (--jwt) and ffmpeg (--media) command-line tools.
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")

# auth_targets.cpp: the fixed test key (its seed is public: it signs nothing but fuzz inputs), and
# the verifiers' clock.
FIXED_SEED = b"vmp3-fuzz-fixed-test-key-seed-01"
NOW = 1_700_000_000
# Ed25519 PKCS#8 prefix of a 32-byte private key (RFC 8410).
PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write(target: str, name: str, data: bytes) -> None:
    directory = os.path.join(CORPUS, target)
    write_into(directory, name, data)


def write_into(directory: str, name: str, data: bytes) -> None:
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def openssl(args, data: bytes) -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def jwt_seeds() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "key.der")
        with open(key, "wb") as f:
            f.write(PKCS8_PREFIX + FIXED_SEED)
        public_der = openssl(["pkey", "-inform", "DER", "-in", key, "-pubout", "-outform", "DER"], b"")
        public = public_der[-32:]
        kid = b64url(hashlib.sha256(public).digest()[:8])

        def sign(header, payload) -> str:
            signed = b64url(compact(header)) + "." + b64url(compact(payload))
            message = os.path.join(tmp, "message")
            with open(message, "wb") as f:
                f.write(signed.encode())
            signature = openssl(["pkeyutl", "-sign", "-keyform", "DER", "-inkey", key, "-rawin",
                                 "-in", message], b"")
            return signed + "." + b64url(signature)

        header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
        claims = {"iss": "vmp3", "sub": "user-1", "name": "ann", "iat": NOW - 60,
                  "exp": NOW + 3600, "jti": "n2V6cQ"}
        # Mode byte '0' (48 % 4 == 0): a token as sent.
        write("jwt", "token-valid", b"0" + sign(header, claims).encode())
        write("jwt", "token-valid-nbf", b"0" + sign(header, {**claims, "nbf": NOW - 10}).encode())
        write("jwt", "token-no-kid", b"0" + sign({"alg": "EdDSA"}, claims).encode())
        write("jwt", "token-expired", b"0" + sign(header, {**claims, "exp": NOW - 100}).encode())
        write("jwt", "token-wrong-issuer", b"0" + sign(header, {**claims, "iss": "other"}).encode())
        write("jwt", "token-alg-none",
              b"0" + (b64url(compact({"alg": "none"})) + "." + b64url(compact(claims)) + ".").encode())
        # Mode byte '1': header JSON NUL payload JSON, signed by the harness.
        write("jwt", "json-valid", b"1" + compact(header) + b"\0" + compact(claims))
        write("jwt", "json-crit", b"1" + compact({**header, "crit": ["b64"]}) + b"\0" + compact(claims))
        write("jwt", "json-kid-number", b"1" + compact({"alg": "EdDSA", "kid": 7}) + b"\0" + compact(claims))
        write("jwt", "json-typ-jwe", b"1" + compact({**header, "typ": "JWE"}) + b"\0" + compact(claims))
        write("jwt", "json-big-numbers",
              b"1" + compact(header) + b"\0" +
              b'{"iss":"vmp3","sub":"u","name":"n","iat":-9223372036854775808,'
              b'"exp":18446744073709551615,"nbf":1e3,"jti":""}')
        # Mode byte '2': a JWKS document.
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(public), "kid": kid, "alg": "EdDSA",
               "use": "sig"}
        write("jwt", "jwks-one", b"2" + compact({"keys": [jwk]}))
        write("jwt", "jwks-mixed", b"2" + compact({"keys": [
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {**jwk, "use": "enc"},
            {"kty": "OKP", "crv": "X25519", "x": b64url(public)},
            {"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes(range(32))), "kid": ""},
            jwk]}))
        write("jwt", "jwks-short-key",
              b"2" + compact({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64url(public[:31])}]}))
        # Mode byte '3': key-file text (public key or seed).
        write("jwt", "key-public", b"3" + base64.b64encode(public) + b"\n")
        write("jwt", "key-seed-urlsafe", b"3  " + base64.urlsafe_b64encode(FIXED_SEED).rstrip(b"="))


def ffmpeg(args, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out" + suffix)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args,
                        "-fflags", "+bitexact", "-flags:a", "+bitexact", out], check=True)
        with open(out, "rb") as f:
            return f.read()


def without_flac_padding(data: bytes) -> bytes:
    """The FLAC file without its PADDING metadata blocks (8 KiB of zeros from the muxer)."""
    assert data[:4] == b"fLaC"
    blocks, pos, last = [], 4, False
    while not last:
        last = bool(data[pos] & 0x80)
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append(data[pos:pos + 4 + length])
        pos += 4 + length
    kept = [b for b in blocks if b[0] & 0x7F != 1]
    kept = [bytes([b[0] & 0x7F]) + b[1:] for b in kept]
    kept[-1] = bytes([kept[-1][0] | 0x80]) + kept[-1][1:]
    return b"fLaC" + b"".join(kept) + data[pos:]


def media_seeds(directory: str) -> None:
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=0.05"]
    seeds = {
        "tone.wav": (tone + ["-c:a", "pcm_u8"], ".wav"),
        "tone.mp3": (tone + ["-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0",
                             "-id3v2_version", "0"], ".mp3"),
        "tone-xing-id3.mp3": (tone + ["-c:a", "libmp3lame", "-b:a", "8k",
                                      "-metadata", "title=T\u00e9st", "-metadata", "artist=A"], ".mp3"),
        "tone.flac": (tone + ["-c:a", "flac"], ".flac"),
        "tone.opus.ogg": (tone + ["-ar", "48000", "-c:a", "libopus", "-b:a", "6k"], ".ogg"),
        "tone.aac": (tone + ["-c:a", "aac", "-b:a", "8k"], ".aac"),
        "tone.m4a": (tone + ["-c:a", "aac", "-b:a", "8k", "-movflags", "+faststart"], ".m4a"),
        "tone.mka": (tone + ["-ar", "48000", "-c:a", "libopus", "-b:a", "6k"], ".mka"),
        "frame-and-tone.mp4": (["-f", "lavfi", "-i", "testsrc=size=16x16:rate=1:duration=1",
                                *tone, "-shortest", "-c:v", "mjpeg", "-q:v", "31",
                                "-c:a", "aac", "-b:a", "8k", "-movflags", "+faststart"], ".mp4"),
    }
    for name, (args, suffix) in seeds.items():
        data = ffmpeg(args, suffix)
        if suffix == ".flac":
            data = without_flac_padding(data)
        # Seeds stay small: a truncated file is as good a start as a whole one.
        data = data[:4000]
        # media_targets.cpp fails reads halfway through for sizes of 7 mod 8; seeds read fully.
        if len(data) % 8 == 7:
            data = data[:-1]
        write_into(directory, name, data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Writes the generated seeds of the fuzz targets.")
    parser.add_argument("--jwt", action="store_true", help="rewrite fuzz/corpus/jwt's token seeds")
    parser.add_argument("--media", metavar="DIR", help="write the media_probe seeds into DIR")
    args = parser.parse_args()
    if not args.jwt and not args.media:
        parser.error("nothing to do: give --jwt and/or --media DIR")
    if args.jwt:
        jwt_seeds()
    if args.media:
        media_seeds(args.media)
