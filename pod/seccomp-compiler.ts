// The one seccomp compiler of skiffd (libseccomp through koffi, pod/spec/seccomp/bpf.ts): crun
// containers get their filter precompiled in an annotation, and skiff-pause, which no OCI runtime
// starts, gets its filter loaded by skiff-ns. Cached per (profile, capability set).
import { logger } from '../common/log.js';
import { libseccomp } from '../native/libseccomp.js';
import { seccompBpfCompiler } from './spec/seccomp/bpf.js';

const log = logger('seccomp');

export const compileSeccompBpf = seccompBpfCompiler(libseccomp, { debug: (fields, msg) => log.debug(fields, msg) });
