/**
 * The trusted execution environments Conclave knows, by the short names the routes, the CLI and the SDK
 * use. One definition: evidence, collateral and the SDK narrow it rather than spell their own.
 */
export type Tee = 'sgx' | 'tdx' | 'snp';

/** The TEEs whose quotes are Intel DCAP quotes (one format, one collateral API). */
export type DcapTee = Extract<Tee, 'sgx' | 'tdx'>;
