// Netlink sockets through koffi, synchronous: socket, bind, send, recv with a deadline (poll), close,
// and setns; and the loopback TCP connect of port-forward (pod-dial.ts). Used only on the netlink
// worker thread (netns.ts), where blocking is allowed and a setns moves no one but that thread; the
// main thread never calls into here. Loads on first use.
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { syscallError } from '../../native/sys.js';
import { decodeMessages, isTerminal } from './codec.js';

type Koffi = typeof import('koffi');

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
export const CLONE_NEWNET = 0x40000000;

/** Big enough for any datagram the kernel builds for a dump (it caps them near 32 KiB). */
const RECV_BUFFER = 64 * 1024;

interface Libc {
  koffi: Koffi;
  socket: (domain: number, type: number, protocol: number) => number;
  bind: (fd: number, addr: Buffer, len: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number;
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number | bigint;
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number | bigint;
  poll: (fds: Buffer, nfds: number, timeout: number) => number;
  setns: (fd: number, nstype: number) => number;
  close: (fd: number) => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const lib = koffi.load('libc.so.6');
  // ssize_t is spelled intptr_t (koffi has none); nfds_t is unsigned long.
  libc = {
    koffi,
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    connect: lib.func('int connect(int fd, const void *addr, uint32_t len)'),
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, _Out_ void *value, _Inout_ void *len)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    send: lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
    recv: lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)'),
    poll: lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    close: lib.func('int close(int fd)'),
  };
  return libc;
}

function fail(syscall: string): never {
  throw syscallError(syscall, load().koffi.errno());
}

function setIntOpt(fd: number, level: number, name: number, value: number): boolean {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  return load().setsockopt(fd, level, name, v, 4) === 0;
}

/**
 * A bound NETLINK_ROUTE socket in the calling thread's network namespace, with extended acks (the
 * kernel says *why*), capped acks (errors do not echo the request) and strict dump filtering.
 */
export function openNetlinkSocket(protocol = NETLINK_ROUTE): number {
  const c = load();
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) fail('socket');
  try {
    // Each option is an improvement the kernel may lack (EXT_ACK ≥ 4.12, STRICT_CHK ≥ 4.20).
    setIntOpt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    setIntOpt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    setIntOpt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    const sa = Buffer.alloc(12); // struct sockaddr_nl { sa_family_t; u16 pad; u32 pid; u32 groups; }
    sa.writeUInt16LE(AF_NETLINK, 0);
    if (c.bind(fd, sa, sa.length) < 0) fail('bind');
  } catch (err) {
    c.close(fd);
    throw err;
  }
  return fd;
}

export function closeFd(fd: number): void {
  load().close(fd);
}

/** setns(2): moves the calling thread only. */
export function setns(fd: number, nstype: number, path?: string): void {
  if (load().setns(fd, nstype) < 0) throw syscallError('setns', load().koffi.errno(), path);
}

const recvBuf = Buffer.alloc(RECV_BUFFER);
const pollFd = Buffer.alloc(8); // struct pollfd { int fd; short events; short revents; }

/** One datagram, waiting at most until `deadline` (Date.now() scale); ETIMEDOUT after it. */
function receive(fd: number, deadline: number): Buffer {
  const c = load();
  for (;;) {
    // The kernel answers most requests inside send(), so the first try usually finds the reply.
    const n = Number(c.recv(fd, recvBuf, recvBuf.length, MSG_DONTWAIT | MSG_TRUNC));
    if (n >= 0) {
      if (n > recvBuf.length) throw syscallError('recv', osConstants.errno.EMSGSIZE);
      return Buffer.from(recvBuf.subarray(0, n));
    }
    const errno = c.koffi.errno();
    if (errno === osConstants.errno.EINTR) continue;
    if (errno !== osConstants.errno.EAGAIN) throw syscallError('recv', errno);
    const left = deadline - Date.now();
    if (left <= 0) throw syscallError('recv', osConstants.errno.ETIMEDOUT);
    pollFd.writeInt32LE(fd, 0);
    pollFd.writeInt16LE(POLLIN, 4);
    pollFd.writeInt16LE(0, 6);
    if (c.poll(pollFd, 1, Math.min(left, 0x7fffffff)) < 0 && c.koffi.errno() !== osConstants.errno.EINTR) fail('poll');
  }
}

/**
 * Sends one request and reads datagrams until the message that ends its answer (the ack, or a
 * dump's NLMSG_DONE), by the deadline. Returns the bytes of the datagrams holding messages of
 * sequence `seq` (others, late answers to a request that timed out, are dropped) and whether the
 * kernel refused the request.
 */
export function exchange(fd: number, request: Buffer, seq: number, dump: boolean, deadline: number): { data: Buffer; failed: boolean } {
  const c = load();
  for (;;) {
    const n = Number(c.send(fd, request, request.length, 0));
    if (n >= 0) break;
    const errno = c.koffi.errno();
    if (errno !== osConstants.errno.EINTR) throw syscallError('send', errno);
  }
  const parts: Buffer[] = [];
  for (;;) {
    const datagram = receive(fd, deadline);
    let done = false;
    let failed = false;
    let keep = false;
    for (const m of decodeMessages(datagram)) {
      if (m.seq !== seq) continue;
      keep = true;
      if (isTerminal(m, dump)) {
        done = true;
        failed = m.payload.length >= 4 && m.payload.readInt32LE(0) !== 0;
      }
    }
    if (keep) parts.push(datagram);
    if (done) return { data: Buffer.concat(parts), failed };
  }
}

/** A non-blocking TCP socket (IPv4 or IPv6) in the calling thread's network namespace. */
export function openTcpSocket(family: 4 | 6): number {
  const fd = load().socket(family === 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket');
  return fd;
}

/**
 * Connects a socket from openTcpSocket to 127.0.0.1 or ::1 on `port`, waiting for the handshake at
 * most until `deadline` (Date.now() scale): a non-blocking connect, poll for writability, then
 * SO_ERROR for the outcome. Throws the errno (ECONNREFUSED…; ETIMEDOUT at the deadline); the
 * caller closes the fd either way.
 */
export function connectLoopback(fd: number, family: 4 | 6, port: number, deadline: number): void {
  const c = load();
  let addr: Buffer;
  if (family === 4) {
    addr = Buffer.alloc(16); // struct sockaddr_in { sa_family_t; in_port_t (BE); in_addr; zero[8] }
    addr.writeUInt16LE(AF_INET, 0);
    addr.writeUInt16BE(port, 2);
    addr.set([127, 0, 0, 1], 4);
  } else {
    addr = Buffer.alloc(28); // struct sockaddr_in6 { sa_family_t; in_port_t; u32 flowinfo; in6_addr; u32 scope }
    addr.writeUInt16LE(AF_INET6, 0);
    addr.writeUInt16BE(port, 2);
    addr[8 + 15] = 1;
  }
  if (c.connect(fd, addr, addr.length) === 0) return;
  const errno = c.koffi.errno();
  // EINTR: the handshake carries on regardless, and poll tells when it is over.
  if (errno !== osConstants.errno.EINPROGRESS && errno !== osConstants.errno.EINTR) throw syscallError('connect', errno);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw syscallError('connect', osConstants.errno.ETIMEDOUT);
    pollFd.writeInt32LE(fd, 0);
    pollFd.writeInt16LE(POLLOUT, 4);
    pollFd.writeInt16LE(0, 6);
    const n = c.poll(pollFd, 1, Math.min(left, 0x7fffffff));
    if (n < 0) {
      if (c.koffi.errno() === osConstants.errno.EINTR) continue;
      fail('poll');
    }
    if (n > 0) break;
  }
  const value = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  if (c.getsockopt(fd, SOL_SOCKET, SO_ERROR, value, len) < 0) fail('getsockopt');
  const soError = value.readInt32LE(0);
  if (soError !== 0) throw syscallError('connect', soError);
}
