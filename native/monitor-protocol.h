/*
 * monitor-protocol.h: everything skiffd and skiff-monitor must agree on, in one place: the command
 * line, the sync message, the control socket's requests and replies, the exit file and the CRI log
 * format. pod/runtime/monitor-protocol.ts mirrors every #define below, and its test parses this
 * file and compares, so the two cannot drift. Keep each value on its #define line, a string literal
 * or a decimal integer, so that the test's one regex reads it.
 *
 * Command line (conmon's shape; skiffd spawns it detached, in a new session):
 *   skiff-monitor --id ID --log PATH --exit-file PATH --pid-file PATH --ctl PATH --sync-fd N
 *                 [--tty] [--stdin] [--stdin-once] [--log-max-line BYTES] [--oom-file PATH]
 *                 -- RUNTIME_ARGV...
 * RUNTIME_ARGV is an opaque `runtime create` command line whose --pid-file is the one given here.
 * With --tty it carries `--console-socket <dir of --ctl>/console.sock`, where the monitor listens
 * for the pty master (SCM_RIGHTS) that the runtime sends.
 *
 * Lifetime:
 *   1. runs RUNTIME_ARGV with pipes (or /dev/null) as its stdio and waits for it;
 *   2. writes ONE sync line on --sync-fd and closes it:
 *        {"pid":N}                                    the container's pid, from --pid-file
 *        {"error":"...","output":"..."}               create failed; the monitor then exits 1.
 *                                                     "output" is the start of what the runtime
 *                                                     wrote on its stdout/stderr (may be empty)
 *   3. logs the container's stdout/stderr to --log in the CRI format, serves --ctl (and the exec
 *      and attach sessions started on it);
 *   4. when the container has exited, its output is drained and its exec and attach sessions have
 *      ended (or DRAIN_MS passed), writes --exit-file atomically, removes --ctl and exits 0. Exec
 *      sessions still running when the container exits are killed and get their exit frames
 *      first; attach sessions get the rest of the output and the container's exit frame.
 * Its own stderr carries diagnostics ("skiff-monitor[ID]: ..."): give it a file or /dev/null.
 * SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGPIPE are ignored; only the container's exit
 * (or SIGKILL) ends it. Paths should be absolute (the runtime runs in the monitor's cwd).
 */
#ifndef SKIFF_MONITOR_PROTOCOL_H
#define SKIFF_MONITOR_PROTOCOL_H

/* ---- Command line ---------------------------------------------------------------------------- */
#define SKIFF_MON_FLAG_ID           "--id"         /* container id, for messages and status */
#define SKIFF_MON_FLAG_LOG          "--log"        /* CRI log file, opened O_APPEND */
#define SKIFF_MON_FLAG_EXIT_FILE    "--exit-file"  /* written once the container is gone */
#define SKIFF_MON_FLAG_PID_FILE     "--pid-file"   /* the runtime's --pid-file, read after create */
#define SKIFF_MON_FLAG_CTL          "--ctl"        /* control socket path (unix, stream, 0600) */
#define SKIFF_MON_FLAG_SYNC_FD      "--sync-fd"    /* inherited descriptor for the sync line */
#define SKIFF_MON_FLAG_TTY          "--tty"        /* container has a terminal (console socket) */
#define SKIFF_MON_FLAG_STDIN        "--stdin"      /* keep a stdin pipe open (else /dev/null) */
#define SKIFF_MON_FLAG_STDIN_ONCE   "--stdin-once" /* close stdin after the first attach ends */
#define SKIFF_MON_FLAG_LOG_MAX_LINE "--log-max-line" /* record size limit in bytes */
#define SKIFF_MON_FLAG_OOM_FILE     "--oom-file" /* the container's memory cgroup counter file */
#define SKIFF_MON_FLAG_END          "--"         /* RUNTIME_ARGV follows */

/* Longer lines are cut into records of this many bytes (containerd's and CRI-O's default). */
#define SKIFF_MON_DEFAULT_LOG_MAX_LINE 16384
#define SKIFF_MON_MIN_LOG_MAX_LINE     64
#define SKIFF_MON_MAX_LOG_MAX_LINE     1048576

/* --oom-file is cgroup v1 memory.oom_control or v2 memory.events: both have a line "oom_kill N".
 * N is read after create and again when the container exits; if it grew, the exit file says
 * "oom_killed":true. A missing file or line counts as 0. */
#define SKIFF_MON_OOM_KILL_KEY "oom_kill"

/* File name of the console socket, in the directory of --ctl. */
#define SKIFF_MON_CONSOLE_SOCKET "console.sock"

/* How long the output may keep flowing after the container exited (grandchildren can hold the
 * pipes open for ever); then the exit file is written anyway. */
#define SKIFF_MON_DRAIN_MS 1000

/* ---- Sync line (monitor -> skiffd, once, on --sync-fd) --------------------------------------- */
#define SKIFF_MON_SYNC_PID    "pid"
#define SKIFF_MON_SYNC_ERROR  "error"
#define SKIFF_MON_SYNC_OUTPUT "output"
/* Most bytes of runtime output quoted in a sync error. */
#define SKIFF_MON_SYNC_OUTPUT_MAX 2048

/* ---- Control socket: one JSON object per line each way; one reply line per request ----------- */
#define SKIFF_MON_CTL_OP          "op"
#define SKIFF_MON_OP_STATUS       "status"     /* -> status reply below */
#define SKIFF_MON_OP_REOPEN_LOG   "reopen-log" /* -> {"ok":true} | {"error":"..."} */
#define SKIFF_MON_OP_ATTACH       "attach"     /* -> {"ok":true} then binary frames; below */
#define SKIFF_MON_OP_RESIZE       "resize"     /* reserved -> {"error":"unsupported"} */
#define SKIFF_MON_OP_EXEC         "exec"       /* -> binary frames, or {"error":"..."}; below */
#define SKIFF_MON_REPLY_OK        "ok"
#define SKIFF_MON_REPLY_ERROR     "error"
#define SKIFF_MON_ERR_UNSUPPORTED "unsupported"
/* The refusal of exec and attach once the container is gone (skiffd: FAILED_PRECONDITION). */
#define SKIFF_MON_ERR_EXITED "the container has exited"
/* Longest request line; a longer one gets an error reply and is skipped. */
#define SKIFF_MON_CTL_MAX_REQUEST 8192
/* Connections served at once; one more is answered with an error and closed. */
#define SKIFF_MON_CTL_MAX_CLIENTS 16

/*
 * Status reply:
 *   {"id":"ID","pid":N,"running":true,"log_dropped":D}
 *   {"id":"ID","pid":N,"running":false,"log_dropped":D,
 *    "exit_code":C,"signal":S,"exited_at":"RFC3339Nano","exited_at_ns":"NS"}
 * log_dropped counts the log records lost to write errors (ENOSPC, EIO...).
 */
#define SKIFF_MON_STATUS_ID          "id"
#define SKIFF_MON_STATUS_PID         "pid"
#define SKIFF_MON_STATUS_RUNNING     "running"
#define SKIFF_MON_STATUS_LOG_DROPPED "log_dropped"

/*
 * Exec session: runs a command line skiffd composed (`<runtime> exec --process F --pid-file P ID`,
 * maybe behind a wrapper) with stdin /dev/null and stdout, stderr on two pipes, in its own process
 * group, and streams what it writes back on the same connection.
 *   request:  {"op":"exec","argv":["/usr/bin/crun",...],"pid_file":"P","timeout_ms":"N"}
 *             argv: 1..EXEC_MAX_ARGS strings, run with PATH lookup; pid_file: the runtime's
 *             --pid-file (the exec'd process, for killing its tree); timeout_ms: a decimal string,
 *             "0" for no deadline.
 *   refused:  one line {"error":"..."} (bad request, EXEC_MAX_SESSIONS running, the container has
 *             exited, spawn failed); the connection stays a control connection.
 *   accepted: the connection carries only frames from then on, monitor -> client:
 *               1 byte type | 4 bytes payload length, big-endian | payload
 *             FRAME_STDOUT and FRAME_STDERR carry output (1..FRAME_MAX bytes, in order per stream);
 *             exactly one FRAME_EXIT ends the session, then the monitor closes the connection:
 *               {"exit_code":C,"signal":S,"timed_out":false}
 *             exit_code is the runtime process's status, 128+S when a signal killed it; 255 with
 *             signal 0 when it could not be collected. No type byte is '{', so the first byte
 *             tells a refusal from a session.
 * The monitor reads the pipes only as fast as the client reads the socket. When timeout_ms passes,
 * when the client disconnects (or shuts down its side), or when the container exits, the monitor
 * SIGKILLs the process named by pid_file with all its descendants, the runtime process with its
 * descendants, and the runtime's process group; timed_out says the deadline did it. Output still
 * held open by a leftover process DRAIN_MS after the runtime exited is cut off.
 *
 * Interactive exec (kubectl exec -i / -it): optional members of the same request, absent = false:
 *             "stdin":true  the runtime process gets a pipe as its stdin (else /dev/null);
 *             "tty":true    with "console_socket":"PATH": argv carries the runtime's
 *                           `--tty --console-socket PATH`; the monitor listens on PATH (0600,
 *                           replacing a stale socket) before it runs argv, takes the pty master
 *                           the runtime sends (SCM_RIGHTS) and removes PATH, once the master is
 *                           in or the runtime has exited. The runtime may detach (runc accepts
 *                           a console socket only with `exec -d`): when it exits 0 and the
 *                           process pid_file names is then a child of the monitor (its
 *                           subreaper), that process is waited for in its place, and its status
 *                           is the exit frame's.
 *   accepted: one line {"ok":true} (as attach: the client knows the session started before any
 *             output), then the frames above, monitor -> client; the terminal is sent as
 *             FRAME_STDOUT (what the runtime itself writes on its stdout and stderr still comes
 *             as FRAME_STDOUT and FRAME_STDERR: its error messages). And client -> monitor, as
 *             attach's:
 *             FRAME_STDIN (only with "stdin"): bytes for the process, written at its pace: while
 *             the pipe (or terminal) is full the monitor stops reading the connection. With a tty
 *             they wait for the terminal to arrive; after the process closed its stdin they are
 *             dropped.
 *             FRAME_STDIN_CLOSE: the pipe is closed (the process sees the end of its input); with
 *             a tty ignored (the end of a terminal's input is the ^D the user types).
 *             FRAME_RESIZE: TIOCSWINSZ on the terminal (kept until it arrives); ignored without.
 *             An unknown type or a malformed frame ends the session as a disconnect does.
 * Without "stdin" and "tty" the session is exactly the one above: what the client sends after
 * the request is read and dropped.
 */
#define SKIFF_MON_EXEC_ARGV           "argv"
#define SKIFF_MON_EXEC_PID_FILE       "pid_file"
#define SKIFF_MON_EXEC_TIMEOUT_MS     "timeout_ms"
#define SKIFF_MON_EXEC_TIMED_OUT      "timed_out"
#define SKIFF_MON_EXEC_STDIN          "stdin"
#define SKIFF_MON_EXEC_TTY            "tty"
#define SKIFF_MON_EXEC_CONSOLE_SOCKET "console_socket"
#define SKIFF_MON_EXEC_MAX_ARGS       128
#define SKIFF_MON_EXEC_MAX_SESSIONS   64
#define SKIFF_MON_FRAME_STDOUT        1
#define SKIFF_MON_FRAME_STDERR        2
#define SKIFF_MON_FRAME_EXIT          3
#define SKIFF_MON_FRAME_HEADER        5
#define SKIFF_MON_FRAME_MAX           16384

/*
 * Attach session (kubectl attach): the container's own stdio, shared with the CRI log.
 *   request:  {"op":"attach","stdin":B,"stdout":B,"stderr":B}
 *             booleans, absent = false, at least one true.
 *   refused:  one line {"error":"..."}; the connection stays a control connection. ERR_EXITED once
 *             the container has exited; others when stdin is asked of a container started without
 *             --stdin or whose stdin was closed (--stdin-once, or the container closed it), with
 *             ATTACH_MAX_SESSIONS attached, on a bad request.
 *   accepted: one line {"ok":true}, then frames both ways (the exec frame format above):
 *     monitor -> client:
 *             FRAME_STDOUT, FRAME_STDERR: the container's output as it is produced from then on
 *             (with --tty the terminal is the only stream, sent as FRAME_STDOUT), a copy of what
 *             goes to the log; only the streams asked for.
 *             FRAME_EXIT once the container has exited and its output is drained, as exec's:
 *             {"exit_code":C,"signal":S,"timed_out":false} (the exit file's code and signal);
 *             then the monitor closes the connection.
 *     client -> monitor:
 *             FRAME_STDIN: bytes for the container's stdin (only on a session with stdin).
 *             FRAME_STDIN_CLOSE: the client's stdin has ended (empty payload). With --stdin-once
 *             and no --tty the container's stdin is closed, as it is when a session with stdin
 *             ends by any means (CRI StdinOnce, as containerd: a terminal is never closed, its
 *             end of input is the ^D the user types). Otherwise only this session's stdin ends.
 *             FRAME_RESIZE: 4 bytes, width then height in columns and rows, each a big-endian
 *             uint16: the terminal's size (TIOCSWINSZ); ignored without --tty.
 *             An unknown type or a malformed frame ends the session.
 * The client closing the connection (or shutting down its side) detaches: the container runs on.
 * The container never waits for a client: each session holds at most ATTACH_BUFFER bytes of
 * output not yet sent, and one that falls further behind is disconnected (the monitor notes it on
 * its stderr). Stdin goes at the container's pace: while it does not read, the monitor stops
 * reading the sockets of the sessions with stdin data for it. The frames of several sessions are
 * written to stdin whole, never interleaved.
 */
#define SKIFF_MON_ATTACH_STDIN        "stdin"
#define SKIFF_MON_ATTACH_STDOUT       "stdout"
#define SKIFF_MON_ATTACH_STDERR       "stderr"
#define SKIFF_MON_ATTACH_MAX_SESSIONS 16
#define SKIFF_MON_ATTACH_BUFFER       1048576
#define SKIFF_MON_FRAME_STDIN         4
#define SKIFF_MON_FRAME_STDIN_CLOSE   5
#define SKIFF_MON_FRAME_RESIZE        6
#define SKIFF_MON_RESIZE_LEN          4

/* ---- Exit file (and the exited part of the status reply) ------------------------------------- */
/* {"exit_code":C,"signal":S,"exited_at":"2026-11-23T18:00:00.123456789Z","exited_at_ns":"NS",
 *  "oom_killed":false}
 * exit_code is 128+S when a signal killed the container (as a shell and kubelet report it), signal
 * is 0 otherwise; exited_at_ns is nanoseconds since the epoch, as a decimal string (it does not fit
 * a JavaScript number). exit_code 255 with signal 0 also stands for "unknown": the container pid
 * was not a child of the monitor, so its status could not be collected. oom_killed: see --oom-file
 * (always false without it; absent in files of older monitors). */
#define SKIFF_MON_EXIT_CODE        "exit_code"
#define SKIFF_MON_EXIT_SIGNAL      "signal"
#define SKIFF_MON_EXIT_AT          "exited_at"
#define SKIFF_MON_EXIT_AT_NS       "exited_at_ns"
#define SKIFF_MON_EXIT_OOM_KILLED  "oom_killed"
#define SKIFF_MON_EXIT_SIGNAL_BASE 128

/* ---- CRI log file (kubelet pkg/kubelet/kuberuntime/logs) ------------------------------------- */
/* One record per line: "<RFC3339Nano UTC, 9 digits> <stream> <tag> <content>\n". A line longer than
 * the max is cut into P records of exactly max bytes and a last F record; a "\r\n" ending is taken
 * as "\n" (containerd does the same; tty output ends lines so); output left without a newline when
 * the stream ends is written as a P record, so that kubelet reproduces it byte for byte (kubelet
 * appends "\n" to F records only; containerd and conmon do the same). Terminal output is "stdout".
 */
#define SKIFF_MON_STREAM_STDOUT "stdout"
#define SKIFF_MON_STREAM_STDERR "stderr"
#define SKIFF_MON_TAG_PARTIAL   "P"
#define SKIFF_MON_TAG_FULL      "F"

#endif /* SKIFF_MONITOR_PROTOCOL_H */
