// Words and numbers as people read them.

// Error codes of the API (job.error.code and problem+json code) in plain sentences.
const MESSAGES = {
  not_media: 'This file is not a video or audio file we can read.',
  no_audio_stream: 'This file has no audio track.',
  corrupt_media: 'This file is damaged or incomplete, so it could not be converted.',
  empty_input: 'This file is empty.',
  media_too_long: 'This file is too long to convert.',
  unsupported_media: 'The sound in this file uses a format we cannot convert.',
  output_too_large: 'The MP3 would be too large to store.',
  too_large: 'This file is larger than the upload limit.',
  deadline_exceeded: 'The conversion took too long and was stopped.',
  cancelled: 'The conversion was cancelled.',
  unavailable: 'The service is busy right now. Please try again in a moment.',
  rate_limited: 'Too many attempts. Please wait a few minutes and try again.',
  internal: 'Something went wrong on our side. Please try again.',
  io_error: 'Something went wrong on our side. Please try again.',
  network: 'The server could not be reached. Check your connection and try again.',
  aborted: 'Upload cancelled.',
  not_found: 'This file no longer exists.',
};

// A sentence for an error code; `detail` (the server's own words) when there is no better one.
export function errorSentence(code, detail) {
  if (MESSAGES[code]) return MESSAGES[code];
  if (detail) return sentence(detail);
  return 'Something went wrong. Please try again.';
}

// "password must be at least 8 characters long" -> "Password must be at least 8 characters long."
export function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return '';
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

// 83.4 -> "1:23"; 3725 -> "1:02:05".
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// Time left in words: "5 s left", "3 min left".
export function timeLeft(seconds) {
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.max(1, Math.ceil(seconds))} s left`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min left`;
  return `${(seconds / 3600).toFixed(1)} h left`;
}

export function percent(fraction) {
  return `${Math.floor(Math.min(1, Math.max(0, fraction)) * 100)}%`;
}

// Job options as shown beside the file: "V2" or "192 kbps".
export function quality(options) {
  if (!options) return '';
  if (options.bitrate) return `${options.bitrate} kbps`;
  if (options.quality) return `quality ${String(options.quality).toUpperCase()}`;
  return '';
}

// Seconds since the epoch (as the API sends them) as a short local date, with the time of day
// when `withTime`; the year only when it is not this one.
export function when(epochSeconds, withTime = true) {
  if (!epochSeconds) return '';
  const date = new Date(epochSeconds * 1000);
  const options = { month: 'short', day: 'numeric' };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = 'numeric';
  if (withTime) Object.assign(options, { hour: 'numeric', minute: '2-digit' });
  return new Intl.DateTimeFormat(undefined, options).format(date);
}
