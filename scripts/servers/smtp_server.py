"""An SMTP server for the e-mail tests, on aiosmtpd (Debian python3-aiosmtpd).

Started and stopped by scripts/servers/smtp.sh, which documents the arguments. It binds
127.0.0.1:PORT and keeps every message it accepts in a Maildir, byte for byte as the client
sent it (after SMTP's own dot-unstuffing), with a few trace headers in front:
  X-MailFrom: the envelope sender (MAIL FROM)
  X-RcptTo: the envelope recipients (RCPT TO), comma-separated
  X-Test-TLS: the TLS version the session used, or "none"
  X-Test-Auth: the user that logged in, or "none"
so tests can check the envelope and that the session really was encrypted and authenticated.

With --tls-cert/--tls-key it offers STARTTLS and refuses MAIL before it (require_starttls);
with --auth-file (one line "user:password") it offers AUTH PLAIN/LOGIN after STARTTLS and
refuses MAIL before a login. Without them it is a plaintext server that never offers STARTTLS:
the tests check that a client requiring TLS refuses it.

Recipients at two reserved domains get scripted answers, like a real relay's:
  anything@reject.invalid  550 5.1.1 (permanent: the mailbox does not exist)
  anything@defer.invalid   451 4.3.0 (temporary: try again later)

Writes its PID to --pid-file once it listens; SIGTERM stops it.
"""

import argparse
import asyncio
import mailbox
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class MaildirHandler:
    def __init__(self, maildir):
        self.maildir = mailbox.Maildir(maildir, create=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rpartition("@")[2].lower()
        if domain == "reject.invalid":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if domain == "defer.invalid":
            return "451 4.3.0 <%s>: temporarily unavailable, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = "none"
        if session.ssl is not None:
            ssl_object = session.ssl.get("ssl_object") if isinstance(session.ssl, dict) else None
            tls = ssl_object.version() if ssl_object is not None else "yes"
        user = session.auth_data if session.authenticated and session.auth_data else "none"
        trace = (
            "X-MailFrom: %s\r\nX-RcptTo: %s\r\nX-Test-TLS: %s\r\nX-Test-Auth: %s\r\n"
            % (envelope.mail_from, ", ".join(envelope.rcpt_tos), tls, user)
        ).encode("utf-8")
        self.maildir.add(trace + envelope.original_content)
        return "250 2.0.0 OK: queued"


def make_authenticator(auth_file):
    with open(auth_file, encoding="utf-8") as f:
        user, _, password = f.readline().rstrip("\n").partition(":")

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode("utf-8", "replace") == user
            and auth_data.password.decode("utf-8", "replace") == password
        )
        # handled=False: aiosmtpd then answers a failure with 535 (handled=True would mean that
        # we had answered, and the client would wait forever).
        return AuthResult(success=ok, handled=ok, auth_data=user if ok else None)

    return authenticate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--auth-file")
    args = parser.parse_args()

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    options = {}
    if args.auth_file:
        if tls_context is None:
            parser.error("--auth-file needs --tls-cert: passwords only travel encrypted")
        options = dict(authenticator=make_authenticator(args.auth_file), auth_required=True,
                       auth_require_tls=True)
    handler = MaildirHandler(args.maildir)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(handler, hostname="vmp3-test-smtp", tls_context=tls_context,
                    require_starttls=tls_context is not None, timeout=60, **options)

    server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=args.port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    tmp = args.pid_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % os.getpid())
    os.replace(tmp, args.pid_file)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
