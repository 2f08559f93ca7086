// What the browser tests share: the real `vmp3 serve`, generated media, Chromium, screenshots.
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, stat } from 'node:fs/promises';
import { openAsBlob, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const chromiumPath = process.env.VMP3_CHROMIUM || '/usr/bin/chromium';

// Why the tests cannot run here, or '' when they can.
export async function missingPrerequisite() {
  const binary = process.env.VMP3_BINARY;
  if (!binary) return 'VMP3_BINARY is not set (the path of the built vmp3 executable)';
  if (!existsSync(binary)) return `VMP3_BINARY ${binary} does not exist`;
  if (!existsSync(chromiumPath)) return `no Chromium at ${chromiumPath}: run scripts/install-browser-test-deps`;
  try {
    await import('playwright-core');
  } catch {
    return 'playwright-core is not installed: run scripts/install-browser-test-deps';
  }
  for (const tool of ['ffmpeg', 'ffprobe']) {
    try {
      await run(tool, ['-version']);
    } catch {
      return `${tool} is not installed: run scripts/install-deps`;
    }
  }
  return '';
}

export async function tempDir(prefix) {
  return mkdtemp(path.join(tmpdir(), prefix));
}

// Starts `vmp3 serve` on a free port with its own data directory; resolves once it listens.
export async function startServer(dataDir) {
  const child = spawn(
    process.env.VMP3_BINARY,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--workers', '1', '--drain', '2', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (chunk) => {
    log += chunk;
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`vmp3 serve did not start:\n${out}${log}`)), 20000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /vmp3 listening on (http:\/\/\S+?)\/?\s/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vmp3 serve exited with ${code}:\n${out}${log}`));
    });
  });
  return {
    url,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// A TCP proxy in front of `target` that can slow the bytes going to it (uploads) to `rate`
// bytes per second. Unlike the browser's own network emulation it really holds the bytes back,
// so a cancelled upload never reaches the server whole.
export async function startThrottle(target) {
  const { hostname, port } = new URL(target);
  let rate = 0;  // 0: as fast as possible
  const sockets = new Set();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    upstream.pipe(client);
    client.on('end', () => upstream.end());
    client.on('data', (chunk) => {
      client.pause();
      const delay = rate > 0 ? (chunk.length / rate) * 1000 : 0;
      const resume = () => setTimeout(() => client.resume(), delay);
      if (upstream.write(chunk)) resume();
      else upstream.once('drain', resume);
    });
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

// An H.264/AAC MP4: test pattern video and a 440 Hz tone, `seconds` long.
export async function makeVideo(file, seconds) {
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=25:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '128k', '-shortest', '-movflags', '+faststart', file,
  ]);
  return (await stat(file)).size;
}

// A long, small audio file that keeps the single converter busy for a while.
export async function makeLongAudio(file, seconds) {
  await run('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=220:sample_rate=8000:duration=${seconds}`,
    '-c:a', 'flac', file,
  ]);
}

export async function probe(file) {
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file,
  ]);
  return JSON.parse(stdout);
}

// The HTTP API straight from Node, for set-up that is not what the page is tested on.
export class ApiClient {
  constructor(base) {
    this.base = base;
  }

  async signUp(username, password) {
    const registered = await fetch(`${this.base}/v1/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (registered.status !== 201) throw new Error(`register: ${registered.status} ${await registered.text()}`);
    const login = await fetch(`${this.base}/v1/auth/login`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
    });
    if (!login.ok) throw new Error(`login: ${login.status}`);
    this.token = (await login.json()).access_token;
  }

  async call(method, route, body) {
    const response = await fetch(`${this.base}${route}`, {
      method,
      body,
      headers: { Authorization: `Bearer ${this.token}` },
    });
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  }

  async upload(file) {
    const form = new FormData();
    form.append('file', await openAsBlob(file), path.basename(file));
    return this.call('POST', '/v1/jobs', form);
  }
}

// Saves full-page screenshots as NN-name.png, numbered in the order taken.
export async function screenshotter() {
  const dir = process.env.VMP3_SCREENSHOT_DIR || path.join(repoRoot, 'build', 'browser-screenshots');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let count = 0;
  return async (page, name) => {
    count += 1;
    const file = path.join(dir, `${String(count).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

export async function writeText(file, text) {
  await writeFile(file, text);
  return file;
}

export async function waitFor(check, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
