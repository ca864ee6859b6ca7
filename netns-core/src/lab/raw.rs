//! The bytes `netlink-packet-route` has no types for, in one place: the options of the `tbf` and
//! `netem` queueing disciplines (`<linux/pkt_sched.h>`), and the nftables batch that drops a
//! share of what an interface receives (`<linux/netfilter/nf_tables.h>`,
//! `<linux/netfilter/nfnetlink.h>`). Values are in native byte order, except nftables' `NLA_BE32`
//! attributes.

use std::time::Duration;

use super::netlink::{Batch, next_sequence};

/// `TCA_OPTIONS`: a qdisc's own options.
pub(super) const TCA_OPTIONS: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// The largest frame on a lab link: an MTU of 1500 and the Ethernet header.
const FRAME: u64 = 1514;

const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
/// netem's queue, in packets (its default).
const NETEM_LIMIT: u32 = 1000;

/// The options of a `tbf` qdisc that sends at most `bits_per_second`: a bucket of 4 ms at that
/// rate (at least two frames, so every frame fits) and a queue of 100 ms (at least four
/// buckets). The rate is in bytes and Ethernet-aware, so no rate table is needed.
pub(super) fn tbf(bits_per_second: u64) -> Vec<u8> {
    let rate = (bits_per_second / 8).max(1);
    let burst = (rate / 250).max(2 * FRAME).min(u64::from(u32::MAX));
    let limit = (rate / 10).max(4 * burst).min(u64::from(u32::MAX));
    // struct tc_tbf_qopt { struct tc_ratespec rate, peakrate; u32 limit, buffer, mtu; }
    let mut parms = Vec::with_capacity(36);
    // struct tc_ratespec { u8 cell_log, linklayer; u16 overhead; i16 cell_align; u16 mpu; u32 rate; }
    parms.extend([0, TC_LINKLAYER_ETHERNET]);
    parms.extend(0u16.to_ne_bytes());
    parms.extend((-1i16).to_ne_bytes());
    parms.extend(0u16.to_ne_bytes());
    parms.extend((rate.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
    parms.extend([0; 12]); // no peak rate
    parms.extend((limit as u32).to_ne_bytes());
    parms.extend(0u32.to_ne_bytes()); // buffer: TCA_TBF_BURST below gives it in bytes
    parms.extend(0u32.to_ne_bytes()); // mtu: only with a peak rate
    let mut options = Vec::new();
    attribute(&mut options, TCA_TBF_PARMS, &parms);
    if rate > u64::from(u32::MAX) {
        attribute(&mut options, TCA_TBF_RATE64, &rate.to_ne_bytes());
    }
    attribute(&mut options, TCA_TBF_BURST, &(burst as u32).to_ne_bytes());
    options
}

/// The options of a `netem` qdisc that delays every packet by `delay`, give or take `jitter`:
/// `struct tc_netem_qopt`, then the 64-bit times in nanoseconds (which override its ticks).
pub(super) fn netem(delay: Duration, jitter: Duration) -> Vec<u8> {
    let mut options = Vec::new();
    // latency, limit, loss, gap, duplicate, jitter
    for value in [0, NETEM_LIMIT, 0, 0, 0, 0u32] {
        options.extend(value.to_ne_bytes());
    }
    let nanos = |time: Duration| i64::try_from(time.as_nanos()).unwrap_or(i64::MAX);
    attribute(
        &mut options,
        TCA_NETEM_LATENCY64,
        &nanos(delay).to_ne_bytes(),
    );
    attribute(
        &mut options,
        TCA_NETEM_JITTER64,
        &nanos(jitter).to_ne_bytes(),
    );
    options
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFPROTO_NETDEV: u8 = 5;
const NF_NETDEV_INGRESS: u32 = 0;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_META_PROTOCOL: u32 = 1;
const NFT_META_L4PROTO: u32 = 16;
const NFT_META_PRANDOM: u32 = 24;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_LT: u32 = 2;
const ETH_P_ARP: u16 = 0x0806;
const IPPROTO_ICMPV6: u8 = 58;

/// The nftables table of a node's loss chains.
const LOSS_TABLE: &str = "in_netns_lab";

/// What [`loss`] must create before it sets the rules.
pub(super) struct Missing {
    /// The node's table.
    pub(super) table: bool,
    /// The interface's chain.
    pub(super) chain: bool,
}

/// Adds to `batch` (for a `NETLINK_NETFILTER` socket) one nftables transaction that makes
/// interface `ifname` drop a `share` of the frames it receives, in a chain on its netdev ingress
/// hook: `meta random < share * 2^32` drops, before any layer sees the frame, so the sender
/// cannot tell it from loss on the wire. ARP and ICMPv6 (neighbour discovery) pass, so a lossy
/// link still resolves its neighbours. A share of 0 empties the chain.
pub(super) fn loss(batch: &mut Batch, ifname: &str, ifindex: u32, share: f64, missing: Missing) {
    let chain = format!("loss_{ifindex}");
    let mut begin = Vec::new();
    nfnl_message(
        &mut begin,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        next_sequence(),
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    batch.raw(&begin, None);
    let mut message = |kind: u16, flags: u16, what: &'static str, attrs: &dyn Fn(&mut Vec<u8>)| {
        let sequence = next_sequence();
        let mut bytes = Vec::new();
        nfnl_message(
            &mut bytes,
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            sequence,
            NFPROTO_NETDEV,
            0,
            attrs,
        );
        batch.raw(&bytes, Some((sequence, what)));
    };
    if missing.table {
        message(
            NFT_MSG_NEWTABLE,
            NLM_F_CREATE,
            "NFT_MSG_NEWTABLE (the lab's loss table)",
            &|b| string(b, NFTA_TABLE_NAME, LOSS_TABLE),
        );
    }
    if missing.chain {
        message(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            "NFT_MSG_NEWCHAIN (a netdev ingress chain for loss)",
            &|b| {
                string(b, NFTA_CHAIN_TABLE, LOSS_TABLE);
                string(b, NFTA_CHAIN_NAME, &chain);
                nest(b, NFTA_CHAIN_HOOK, |b| {
                    be32(b, NFTA_HOOK_HOOKNUM, NF_NETDEV_INGRESS);
                    be32(b, NFTA_HOOK_PRIORITY, 0);
                    string(b, NFTA_HOOK_DEV, ifname);
                });
                be32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
                string(b, NFTA_CHAIN_TYPE, "filter");
            },
        );
    }
    // Empties the chain (a rule deletion without a handle).
    message(
        NFT_MSG_DELRULE,
        0,
        "NFT_MSG_DELRULE (the loss chain's rules)",
        &|b| {
            string(b, NFTA_RULE_TABLE, LOSS_TABLE);
            string(b, NFTA_RULE_CHAIN, &chain);
        },
    );
    if share > 0.0 {
        let flags = NLM_F_CREATE | NLM_F_APPEND;
        message(
            NFT_MSG_NEWRULE,
            flags,
            "NFT_MSG_NEWRULE (ARP passes)",
            &|b| {
                rule(b, &chain, &|b| {
                    meta(b, NFT_META_PROTOCOL);
                    compare(b, NFT_CMP_EQ, &ETH_P_ARP.to_be_bytes());
                    verdict(b, NF_ACCEPT);
                })
            },
        );
        message(
            NFT_MSG_NEWRULE,
            flags,
            "NFT_MSG_NEWRULE (ICMPv6 passes)",
            &|b| {
                rule(b, &chain, &|b| {
                    meta(b, NFT_META_L4PROTO);
                    compare(b, NFT_CMP_EQ, &[IPPROTO_ICMPV6]);
                    verdict(b, NF_ACCEPT);
                })
            },
        );
        // share * 2^32, compared with 4 random bytes as a big-endian number.
        let threshold = (share * 4_294_967_296.0).round();
        message(
            NFT_MSG_NEWRULE,
            flags,
            "NFT_MSG_NEWRULE (random drop)",
            &|b| {
                rule(b, &chain, &|b| {
                    if threshold < 4_294_967_296.0 {
                        meta(b, NFT_META_PRANDOM);
                        compare(b, NFT_CMP_LT, &(threshold as u32).to_be_bytes());
                    }
                    verdict(b, NF_DROP);
                })
            },
        );
    }
    let mut end = Vec::new();
    nfnl_message(
        &mut end,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        next_sequence(),
        0,
        NFNL_SUBSYS_NFTABLES,
        |_| {},
    );
    batch.raw(&end, None);
}

/// A rule's attributes: its table, its chain, its expressions.
fn rule(b: &mut Vec<u8>, chain: &str, expressions: &dyn Fn(&mut Vec<u8>)) {
    string(b, NFTA_RULE_TABLE, LOSS_TABLE);
    string(b, NFTA_RULE_CHAIN, chain);
    nest(b, NFTA_RULE_EXPRESSIONS, expressions);
}

/// `meta load KEY => reg 1`.
fn meta(b: &mut Vec<u8>, key: u32) {
    expression(b, "meta", |b| {
        be32(b, NFTA_META_DREG, NFT_REG_1);
        be32(b, NFTA_META_KEY, key);
    });
}

/// `cmp OP reg 1 VALUE`.
fn compare(b: &mut Vec<u8>, op: u32, value: &[u8]) {
    expression(b, "cmp", |b| {
        be32(b, NFTA_CMP_SREG, NFT_REG_1);
        be32(b, NFTA_CMP_OP, op);
        nest(b, NFTA_CMP_DATA, |b| attribute(b, NFTA_DATA_VALUE, value));
    });
}

/// `immediate reg 0 VERDICT`.
fn verdict(b: &mut Vec<u8>, code: u32) {
    expression(b, "immediate", |b| {
        be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        nest(b, NFTA_IMMEDIATE_DATA, |b| {
            nest(b, NFTA_DATA_VERDICT, |b| be32(b, NFTA_VERDICT_CODE, code));
        });
    });
}

/// One element of a rule's expression list.
fn expression(b: &mut Vec<u8>, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
    nest(b, NFTA_LIST_ELEM, |b| {
        string(b, NFTA_EXPR_NAME, name);
        nest(b, NFTA_EXPR_DATA, data);
    });
}

/// An nfnetlink message: `nlmsghdr`, `nfgenmsg` (family, version 0, resource id), attributes.
fn nfnl_message(
    b: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    sequence: u32,
    family: u8,
    resource: u16,
    attrs: impl FnOnce(&mut Vec<u8>),
) {
    let start = b.len();
    b.extend([0; 4]); // length, patched below
    b.extend(kind.to_ne_bytes());
    b.extend(flags.to_ne_bytes());
    b.extend(sequence.to_ne_bytes());
    b.extend(0u32.to_ne_bytes()); // port: the kernel
    b.extend([family, 0]);
    b.extend(resource.to_be_bytes());
    attrs(b);
    let length = (b.len() - start) as u32;
    b[start..start + 4].copy_from_slice(&length.to_ne_bytes());
}

/// An attribute: `nlattr` header, value, padding to 4 bytes.
fn attribute(b: &mut Vec<u8>, kind: u16, value: &[u8]) {
    b.extend(((4 + value.len()) as u16).to_ne_bytes());
    b.extend(kind.to_ne_bytes());
    b.extend(value);
    pad(b);
}

/// A nested attribute whose contents `inner` writes.
fn nest(b: &mut Vec<u8>, kind: u16, inner: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    b.extend([0; 2]);
    b.extend((kind | NLA_F_NESTED).to_ne_bytes());
    inner(b);
    let length = (b.len() - start) as u16;
    b[start..start + 2].copy_from_slice(&length.to_ne_bytes());
    pad(b);
}

/// A NUL-terminated string attribute.
fn string(b: &mut Vec<u8>, kind: u16, value: &str) {
    let mut bytes = value.as_bytes().to_vec();
    bytes.push(0);
    attribute(b, kind, &bytes);
}

/// A big-endian 32-bit attribute (`NLA_BE32`).
fn be32(b: &mut Vec<u8>, kind: u16, value: u32) {
    attribute(b, kind, &value.to_be_bytes());
}

fn pad(b: &mut Vec<u8>) {
    while b.len() % 4 != 0 {
        b.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tbf_options_hold_the_rate_in_bytes_and_a_bucket_of_two_frames_at_least() {
        let options = tbf(1_000_000);
        // TCA_TBF_PARMS: header, then the rate's fields.
        assert_eq!(u16::from_ne_bytes([options[0], options[1]]), 4 + 36);
        assert_eq!(u16::from_ne_bytes([options[2], options[3]]), TCA_TBF_PARMS);
        assert_eq!(options[5], TC_LINKLAYER_ETHERNET);
        let rate = u32::from_ne_bytes(options[12..16].try_into().unwrap());
        assert_eq!(rate, 125_000);
        // TCA_TBF_BURST follows.
        let burst = &options[40..48];
        assert_eq!(u16::from_ne_bytes([burst[2], burst[3]]), TCA_TBF_BURST);
        assert_eq!(u32::from_ne_bytes(burst[4..8].try_into().unwrap()), 3028);
    }

    #[test]
    fn nested_attributes_are_padded_and_flagged() {
        let mut b = Vec::new();
        nest(&mut b, 4, |b| string(b, 1, "ab"));
        assert_eq!(b.len(), 12);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 12);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 4 | NLA_F_NESTED);
        assert_eq!(&b[8..11], b"ab\0");
    }
}
