// CNI mode of pod networking: what the rest of skiff may use. The executor, conf dir reader and
// result cache behind it are this folder's own.
export { CniNetwork, type CniGcReport, type CniNetworkOptions, type CniStatus } from './cni-network.js';
export type {
  CniAddRequest,
  CniAttachmentRef,
  CniBandwidth,
  CniCapabilityArgs,
  CniDelRequest,
  CniDnsConfig,
  CniPod,
  CniPortMapping,
} from './request.js';
export { CNI_VERSIONS, type CniNetworkConfigList, type CniPluginConf } from './config.js';
export { CniPluginError, type CniCommand } from './exec.js';
export type { CniDnsResult, CniInterface, CniIp, CniResult, CniRoute } from './result.js';
