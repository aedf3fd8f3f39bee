//! What one ADD_SA programs: one SA, or ESP then AH; framing (host) and crypto (NIC or
//! software path) as separate calls.

use core::net::IpAddr;
use core::ops::Range;

use crate::crypto::ProviderKind;
use crate::error::{CryptoError, FrameError};
use crate::esn;
use crate::params::{Mode, ParamError, Protocol, SaParams};
use crate::transform::Transform;
use crate::wire::{ah, esp, get_u32, ip_protocol, ipv4, ipv6, udp};

/// Default window for ESN high-bit inference in [`Bundle::unprotect`] /
/// [`Bundle::decapsulate`]: 2^31, i.e. "the candidate nearest to the highest accepted number".
/// See [`Bundle::with_esn_window`].
pub const DEFAULT_ESN_WINDOW: u32 = 1 << 31;

/// Sequence numbers for each SA of a bundle (full 64-bit values; ESP's and AH's counters are
/// separate). Unused members are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BundleSeq {
    /// The ESP SA's sequence number.
    pub esp: u64,
    /// The AH SA's sequence number.
    pub ah: u64,
}

/// ESN high-order 32 bits for each SA of a bundle (ignored for SAs without ESN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BundleSeqHi {
    /// High bits of the ESP SA's sequence number.
    pub esp: u32,
    /// High bits of the AH SA's sequence number.
    pub ah: u32,
}

impl BundleSeq {
    /// The high 32 bits of each member.
    pub fn hi(&self) -> BundleSeqHi {
        BundleSeqHi {
            esp: (self.esp >> 32) as u32,
            ah: (self.ah >> 32) as u32,
        }
    }
}

/// The result of a successful [`Bundle::unprotect`]: the packet is verified and decrypted in
/// place, nothing is stripped yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Unprotected {
    /// The full (ESN-inferred) sequence number of each SA, as verified by the ICV.
    pub seq: BundleSeq,
    /// The protected payload's protocol (ESP trailer next header, or AH next header).
    pub next_header: u8,
    /// ESP pad length (0 without ESP).
    pub pad_len: u8,
    /// The protected payload inside the packet (after the IV, before the padding): the
    /// transport-layer segment (transport mode) or the inner IP packet (tunnel mode).
    pub payload: Range<usize>,
    /// The outermost SPI.
    pub spi: u32,
}

/// The result of a successful [`Bundle::decapsulate`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decapsulated {
    /// The cleartext IP packet's range in the buffer.
    pub packet: Range<usize>,
    /// The full sequence number of each SA, for the replay check.
    pub seq: BundleSeq,
    /// The protocol of the payload (transport) or 4 / 41 (tunnel).
    pub next_header: u8,
    /// The outermost SPI (AH's in an AH+ESP bundle).
    pub spi: u32,
}

/// One SA, or two SAs in processing order ESP then AH (same mode; on the wire AH is outside:
/// IP | AH | ESP | ...). `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct Bundle {
    esp: Option<Transform>,
    ah: Option<Transform>,
    mode: Mode,
    esn_window: u32,
}

/// Where the IPsec headers of a framed packet are.
struct Layout {
    ipv6: bool,
    ip_hl: usize,
    /// End of the IP packet (its length field).
    end: usize,
    ah_off: Option<usize>,
    esp_off: Option<usize>,
    /// First byte after AH and the UDP header (the ESP header, or AH's payload).
    after: usize,
}

fn full_seq(esn: bool, hi: u32, lo: u32) -> u64 {
    if esn {
        (u64::from(hi) << 32) | u64::from(lo)
    } else {
        u64::from(lo)
    }
}

/// The fields of the cleartext IP packet `encapsulate` needs.
struct Inner {
    ipv6: bool,
    hl: usize,
    total: usize,
    protocol: u8,
    tos: u8,
    dont_frag: bool,
}

impl Inner {
    fn parse(pkt: &[u8], mode: Mode) -> Result<Inner, FrameError> {
        match pkt.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = ipv4::Packet::new_checked(pkt)?;
                if ip.is_fragment() {
                    return Err(FrameError::Unsupported);
                }
                Ok(Inner {
                    ipv6: false,
                    hl: ip.header_len(),
                    total: usize::from(ip.total_len()),
                    protocol: ip.protocol(),
                    tos: ip.tos(),
                    dont_frag: ip.dont_frag(),
                })
            }
            Some(6) => {
                let ip = ipv6::Packet::new_checked(pkt)?;
                // Transport mode inserts ESP/AH right after the fixed header; with extension
                // headers it would have to go after some of them: not handled.
                if mode == Mode::Transport && ip_protocol::is_ipv6_extension(ip.next_header()) {
                    return Err(FrameError::Unsupported);
                }
                Ok(Inner {
                    ipv6: true,
                    hl: ipv6::HEADER_LEN,
                    total: ip.total_len(),
                    protocol: ip.next_header(),
                    tos: ip.traffic_class(),
                    dont_frag: false,
                })
            }
            Some(_) => Err(FrameError::Malformed),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Bundle {
    /// Build the transforms of one SA, or of ESP then AH.
    ///
    /// # Errors
    /// [`ParamError::InvalidBundle`] for another count or order, different modes or tunnel
    /// endpoints; [`ParamError::UdpEncapOnAh`] for a UDP-encapsulated ESP SA under AH; any
    /// [`Transform::new`] error.
    pub fn new(sas: &[SaParams], provider: ProviderKind) -> Result<Bundle, ParamError> {
        let (esp, ah) = match sas {
            [one] => {
                let t = Transform::new(one, provider)?;
                match t.protocol() {
                    Protocol::Esp => (Some(t), None),
                    Protocol::Ah => (None, Some(t)),
                }
            }
            [e, a] => {
                if e.protocol != Protocol::Esp
                    || a.protocol != Protocol::Ah
                    || e.mode != a.mode
                    || e.tunnel != a.tunnel
                {
                    return Err(ParamError::InvalidBundle);
                }
                if e.udp_encap.is_some() {
                    return Err(ParamError::UdpEncapOnAh);
                }
                (
                    Some(Transform::new(e, provider)?),
                    Some(Transform::new(a, provider)?),
                )
            }
            _ => return Err(ParamError::InvalidBundle),
        };
        let mode = esp
            .as_ref()
            .or(ah.as_ref())
            .map(Transform::mode)
            .ok_or(ParamError::InvalidBundle)?;
        Ok(Bundle {
            esp,
            ah,
            mode,
            esn_window: DEFAULT_ESN_WINDOW,
        })
    }

    /// Use `window` (normally the inbound SA's replay window size) for ESN high-bit inference
    /// (RFC 4303 Appendix A2.1) instead of [`DEFAULT_ESN_WINDOW`].
    #[must_use]
    pub fn with_esn_window(mut self, window: u32) -> Bundle {
        self.esn_window = window;
        self
    }

    /// The ESP SA, if any.
    pub fn esp(&self) -> Option<&Transform> {
        self.esp.as_ref()
    }

    /// The AH SA, if any.
    pub fn ah(&self) -> Option<&Transform> {
        self.ah.as_ref()
    }

    /// Transport or tunnel.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn first(&self) -> Option<&Transform> {
        self.ah.as_ref().or(self.esp.as_ref())
    }

    fn tunnel_v6(&self) -> Option<bool> {
        self.first()
            .and_then(Transform::tunnel)
            .map(|t| t.local.is_ipv6())
    }

    /// Worst-case bytes `encapsulate` adds before the packet (headroom) and after it
    /// (tailroom).
    pub fn overhead(&self) -> (usize, usize) {
        let outer = match self.tunnel_v6() {
            Some(true) => ipv6::HEADER_LEN,
            Some(false) => ipv4::HEADER_LEN,
            None => 0,
        };
        let udp = match self.esp.as_ref().and_then(Transform::udp_encap) {
            Some(_) => udp::HEADER_LEN,
            None => 0,
        };
        let ah = self
            .ah
            .as_ref()
            .map_or(0, |a| ah::FIXED_LEN + a.ah_icv_field_len(true));
        let (esp_head, tail) = self.esp.as_ref().map_or((0, 0), |e| {
            (
                esp::HEADER_LEN + e.iv_len(),
                e.block_size() - 1 + esp::TRAILER_LEN + e.icv_len(),
            )
        });
        (outer + udp + ah + esp_head, tail)
    }

    /// HOST framing, no crypto. `buf[packet]` is a cleartext IP packet (v4 or v6); turn it in
    /// place, using headroom before `packet.start` and tailroom after `packet.end`, into the
    /// framed IPsec packet with zeroed IV and ICV space. Returns the framed packet's range.
    ///
    /// Tunnel mode writes a new outer header (RFC 4301 §5.1.2): addresses from the SA's
    /// tunnel endpoints, TTL / hop limit 64, DSCP and ECN copied from the inner header, IPv4
    /// DF copied when the inner packet is IPv4 (else clear), IPv4 identification = the low 16
    /// bits of the outermost SA's sequence number (deterministic, so NIC and software frames are
    /// identical; unique over 65536 consecutive packets), IPv6 flow label 0. Transport mode
    /// moves the IP header forward and fixes its length, protocol and IPv4 checksum; IPv4
    /// options are kept.
    ///
    /// # Errors
    /// [`FrameError::NoRoom`] without enough headroom/tailroom, [`FrameError::TooLarge`] past
    /// 65535 bytes, [`FrameError::SeqOverflow`] for a sequence number above 2^32 - 1 on a
    /// non-ESN SA, [`FrameError::Unsupported`] for IPv4 fragments and (transport mode) IPv6
    /// extension headers, parse errors of the inner packet.
    pub fn encapsulate(
        &self,
        seq: BundleSeq,
        buf: &mut [u8],
        packet: Range<usize>,
    ) -> Result<Range<usize>, FrameError> {
        let pkt = buf.get(packet.clone()).ok_or(FrameError::Truncated)?;
        let inner = Inner::parse(pkt, self.mode)?;
        for (t, s) in [(&self.esp, seq.esp), (&self.ah, seq.ah)] {
            if let Some(t) = t
                && !t.esn()
                && s > u64::from(u32::MAX)
            {
                return Err(FrameError::SeqOverflow);
            }
        }
        let outer_v6 = self.tunnel_v6().unwrap_or(inner.ipv6);
        let outer_hl = match self.mode {
            Mode::Transport => inner.hl,
            Mode::Tunnel if outer_v6 => ipv6::HEADER_LEN,
            Mode::Tunnel => ipv4::HEADER_LEN,
        };
        let udp_encap = self.esp.as_ref().and_then(Transform::udp_encap);
        let udp_len = if udp_encap.is_some() {
            udp::HEADER_LEN
        } else {
            0
        };
        let ah_icv = self.ah.as_ref().map_or(0, |a| a.ah_icv_field_len(outer_v6));
        let ah_len = if self.ah.is_some() {
            ah::FIXED_LEN + ah_icv
        } else {
            0
        };
        let esp_hdr = self
            .esp
            .as_ref()
            .map_or(0, |e| esp::HEADER_LEN + e.iv_len());
        let (p0, payload_len) = match self.mode {
            Mode::Transport => (packet.start + inner.hl, inner.total - inner.hl),
            Mode::Tunnel => (packet.start, inner.total),
        };
        let pad = self.esp.as_ref().map_or(0, |e| {
            esp::TrailerRepr::padding_for(payload_len, e.block_size())
        });
        let trailer = self
            .esp
            .as_ref()
            .map_or(0, |e| usize::from(pad) + esp::TRAILER_LEN + e.icv_len());
        let start = p0
            .checked_sub(outer_hl + udp_len + ah_len + esp_hdr)
            .ok_or(FrameError::NoRoom)?;
        let payload_end = p0 + payload_len;
        let end = payload_end + trailer;
        if end > buf.len() {
            return Err(FrameError::NoRoom);
        }
        let total = end - start;
        let limit = if outer_v6 {
            65535 + ipv6::HEADER_LEN
        } else {
            65535
        };
        if total > limit {
            return Err(FrameError::TooLarge);
        }
        let inner_proto = match (self.mode, inner.ipv6) {
            (Mode::Transport, _) => inner.protocol,
            (Mode::Tunnel, false) => ip_protocol::IPV4,
            (Mode::Tunnel, true) => ip_protocol::IPV6,
        };
        let first_proto = if self.ah.is_some() {
            ip_protocol::AH
        } else if udp_encap.is_some() {
            ip_protocol::UDP
        } else {
            ip_protocol::ESP
        };

        // Outer IP header.
        match self.mode {
            Mode::Transport => buf.copy_within(packet.start..packet.start + inner.hl, start),
            Mode::Tunnel => {
                let t = self
                    .first()
                    .and_then(Transform::tunnel)
                    .ok_or(FrameError::Malformed)?;
                let hdr = buf
                    .get_mut(start..start + outer_hl)
                    .ok_or(FrameError::NoRoom)?;
                hdr.fill(0);
                let ident_seq = if self.ah.is_some() { seq.ah } else { seq.esp };
                match (t.local, t.remote) {
                    (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
                        src_addr: src,
                        dst_addr: dst,
                        protocol: first_proto,
                        payload_len: total - ipv4::HEADER_LEN,
                        ttl: 64,
                        tos: inner.tos,
                        ident: ident_seq as u16,
                        dont_frag: !inner.ipv6 && inner.dont_frag,
                    }
                    .emit(&mut ipv4::Packet::new_unchecked(hdr))?,
                    (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6::Repr {
                        src_addr: src,
                        dst_addr: dst,
                        next_header: first_proto,
                        payload_len: total - ipv6::HEADER_LEN,
                        hop_limit: 64,
                        traffic_class: inner.tos,
                        flow_label: 0,
                    }
                    .emit(&mut ipv6::Packet::new_unchecked(hdr))?,
                    _ => return Err(FrameError::Malformed),
                }
            }
        }
        {
            let out = buf.get_mut(start..end).ok_or(FrameError::NoRoom)?;
            if outer_v6 {
                let mut ip = ipv6::Packet::new_unchecked(out);
                ip.set_payload_len((total - ipv6::HEADER_LEN) as u16);
                ip.set_next_header(first_proto);
            } else {
                let mut ip = ipv4::Packet::new_unchecked(out);
                ip.set_total_len(total as u16);
                ip.set_protocol(first_proto);
                ip.fill_checksum();
            }
        }
        let mut off = start + outer_hl;
        if let Some(a) = &self.ah {
            let repr = ah::Repr {
                next_header: if self.esp.is_some() {
                    ip_protocol::ESP
                } else {
                    inner_proto
                },
                spi: a.spi(),
                seq_number: seq.ah as u32,
                icv_len: ah_icv,
            };
            let h = buf.get_mut(off..off + ah_len).ok_or(FrameError::NoRoom)?;
            repr.emit(&mut ah::Packet::new_unchecked(h))?;
            off += ah_len;
        }
        if let Some(u) = udp_encap {
            // RFC 3948 §2.1: source = this host's port, checksum 0.
            let repr = udp::Repr {
                src_port: u.local_port,
                dst_port: u.remote_port,
                payload_len: end - off - udp::HEADER_LEN,
            };
            let h = buf
                .get_mut(off..off + udp::HEADER_LEN)
                .ok_or(FrameError::NoRoom)?;
            repr.emit(&mut udp::Packet::new_unchecked(h))?;
            off += udp::HEADER_LEN;
        }
        if let Some(e) = &self.esp {
            let h = buf.get_mut(off..p0).ok_or(FrameError::NoRoom)?;
            h.fill(0); // zeroed IV space
            esp::Repr {
                spi: e.spi(),
                seq_number: seq.esp as u32,
            }
            .emit(&mut esp::Packet::new_unchecked(h));
            let t = esp::TrailerRepr {
                pad_len: pad,
                next_header: inner_proto,
            };
            let tail = buf
                .get_mut(payload_end..payload_end + t.buffer_len())
                .ok_or(FrameError::NoRoom)?;
            t.emit(tail)?;
            buf.get_mut(payload_end + t.buffer_len()..end)
                .ok_or(FrameError::NoRoom)?
                .fill(0);
        }
        Ok(start..end)
    }

    /// Find the IPsec headers of a framed packet and check protocols and SPIs.
    fn locate(&self, packet: &[u8]) -> Result<Layout, FrameError> {
        let (ipv6, ip_hl, end, mut proto) = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = ipv4::Packet::new_checked(packet)?;
                if ip.is_fragment() {
                    return Err(FrameError::Unsupported);
                }
                (
                    false,
                    ip.header_len(),
                    usize::from(ip.total_len()),
                    ip.protocol(),
                )
            }
            Some(6) => {
                let ip = ipv6::Packet::new_checked(packet)?;
                if ip_protocol::is_ipv6_extension(ip.next_header()) {
                    return Err(FrameError::Unsupported);
                }
                (true, ipv6::HEADER_LEN, ip.total_len(), ip.next_header())
            }
            Some(_) => return Err(FrameError::Malformed),
            None => return Err(FrameError::Truncated),
        };
        let mut off = ip_hl;
        let mut ah_off = None;
        if let Some(a) = &self.ah {
            if proto != ip_protocol::AH {
                return Err(FrameError::ProtocolMismatch);
            }
            let view = ah::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
            if view.spi() != a.spi() {
                return Err(FrameError::SpiMismatch);
            }
            if view.header_len() != ah::FIXED_LEN + a.ah_icv_field_len(ipv6) {
                return Err(FrameError::Malformed);
            }
            ah_off = Some(off);
            off += view.header_len();
            proto = view.next_header();
        }
        let mut esp_off = None;
        if let Some(e) = &self.esp {
            if e.udp_encap().is_some() {
                if proto != ip_protocol::UDP {
                    return Err(FrameError::ProtocolMismatch);
                }
                let u =
                    udp::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
                if usize::from(u.len()) != end - off {
                    return Err(FrameError::Malformed);
                }
                off += udp::HEADER_LEN;
            } else if proto != ip_protocol::ESP {
                return Err(FrameError::ProtocolMismatch);
            }
            let view =
                esp::Packet::new_checked(packet.get(off..end).ok_or(FrameError::Truncated)?)?;
            if view.spi() != e.spi() {
                return Err(FrameError::SpiMismatch);
            }
            esp_off = Some(off);
        }
        Ok(Layout {
            ipv6,
            ip_hl,
            end,
            ah_off,
            esp_off,
            after: off,
        })
    }

    /// CRYPTO step (NIC or software path) on a packet framed by [`Bundle::encapsulate`]
    /// (exactly one IP packet, starting at the outer IP header): write the IV (see
    /// [`Transform::derive_iv`]), encrypt, compute the ICVs: ESP first, then AH over the
    /// result. `seq_hi` gives the ESN high bits of each SA; the low bits come from the headers.
    ///
    /// # Errors
    /// [`CryptoError::InvalidSyntax`], [`CryptoError::ProtocolMismatch`],
    /// [`CryptoError::SpiMismatch`], [`CryptoError::Unsupported`].
    pub fn protect(&self, packet: &mut [u8], seq_hi: BundleSeqHi) -> Result<(), CryptoError> {
        let l = self.locate(packet)?;
        let packet = packet.get_mut(..l.end).ok_or(CryptoError::InvalidSyntax)?;
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let seq = full_seq(e.esn(), seq_hi.esp, get_u32(packet, off + 4));
            let mut iv = [0u8; 16];
            let n = e.derive_iv(seq, &mut iv);
            let esp = packet.get_mut(off..).ok_or(CryptoError::InvalidSyntax)?;
            e.seal_esp(esp, seq, iv.get(..n).ok_or(CryptoError::InvalidSyntax)?)?;
        }
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let seq = full_seq(a.esn(), seq_hi.ah, get_u32(packet, off + 8));
            a.seal_ah(packet, off, seq)?;
        }
        Ok(())
    }

    /// CRYPTO step on receive: verify AH (if any), then verify and decrypt ESP in place and
    /// check its padding. Strips nothing. `highest` is the highest sequence number accepted
    /// so far on each SA (0 for a new SA), for ESN inference (RFC 4303 Appendix A2.1, with the
    /// bundle's ESN window).
    ///
    /// The caller checks the replay window with the inferred number before calling this, and
    /// must check again with the returned [`Unprotected::seq`] before updating the window
    /// (see [`crate::replay`]).
    ///
    /// # Errors
    /// [`CryptoError::AuthFailed`], [`CryptoError::BadPadding`], [`CryptoError::InvalidSyntax`],
    /// [`CryptoError::ProtocolMismatch`], [`CryptoError::SpiMismatch`],
    /// [`CryptoError::Unsupported`].
    pub fn unprotect(
        &self,
        packet: &mut [u8],
        highest: BundleSeq,
    ) -> Result<Unprotected, CryptoError> {
        let l = self.locate(packet)?;
        let packet = packet.get_mut(..l.end).ok_or(CryptoError::InvalidSyntax)?;
        let mut out = Unprotected {
            seq: BundleSeq::default(),
            next_header: 0,
            pad_len: 0,
            payload: l.after..l.end,
            spi: 0,
        };
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let lo = get_u32(packet, off + 8);
            let seq = if a.esn() {
                esn::infer(lo, highest.ah, self.esn_window)
            } else {
                u64::from(lo)
            };
            a.open_ah(packet, off, seq)?;
            out.seq.ah = seq;
            out.spi = a.spi();
            out.next_header = packet.get(off).copied().unwrap_or(0);
        }
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let lo = get_u32(packet, off + 4);
            let seq = if e.esn() {
                esn::infer(lo, highest.esp, self.esn_window)
            } else {
                u64::from(lo)
            };
            let esp = packet.get_mut(off..).ok_or(CryptoError::InvalidSyntax)?;
            let opened = e.open_esp(esp, seq)?;
            out.seq.esp = seq;
            if self.ah.is_none() {
                out.spi = e.spi();
            }
            out.next_header = opened.next_header;
            out.pad_len = opened.pad_len;
            out.payload = off + opened.payload.start..off + opened.payload.end;
        }
        Ok(out)
    }

    /// The protected payload and its protocol in an unprotected (decrypted) packet.
    fn payload_of(&self, packet: &[u8], l: &Layout) -> Result<(Range<usize>, u8), FrameError> {
        match (&self.esp, l.esp_off) {
            (Some(e), Some(off)) => {
                let body_start = off + esp::HEADER_LEN + e.iv_len();
                let body_end = l
                    .end
                    .checked_sub(e.icv_len())
                    .ok_or(FrameError::Truncated)?;
                let body = packet
                    .get(body_start..body_end)
                    .ok_or(FrameError::Truncated)?;
                let t = esp::TrailerRepr::parse(body)?;
                Ok((body_start..body_end - t.buffer_len(), t.next_header))
            }
            _ => {
                let off = l.ah_off.ok_or(FrameError::Malformed)?;
                Ok((l.after..l.end, packet.get(off).copied().unwrap_or(0)))
            }
        }
    }

    /// The length of the inner IP packet at the start of `payload` (tunnel mode).
    fn inner_len(payload: &[u8], next_header: u8) -> Result<usize, FrameError> {
        let len = match next_header {
            ip_protocol::IPV4 => usize::from(ipv4::Packet::new_checked(payload)?.total_len()),
            ip_protocol::IPV6 => ipv6::Packet::new_checked(payload)?.total_len(),
            _ => return Err(FrameError::Malformed),
        };
        Ok(len)
    }

    /// HOST strip, after [`Bundle::unprotect`]: remove the IPsec headers, IV, padding,
    /// trailer and ICV. Transport mode restores the IP header in place (protocol = next
    /// header, lengths, IPv4 checksum); tunnel mode returns the inner packet. Does no crypto.
    ///
    /// # Errors
    /// [`FrameError`] for malformed input (including bad padding), protocol or SPI mismatch.
    pub fn decapsulate(
        &self,
        buf: &mut [u8],
        packet: Range<usize>,
        highest: BundleSeq,
    ) -> Result<Decapsulated, FrameError> {
        let base = packet.start;
        let pkt = buf.get_mut(packet).ok_or(FrameError::Truncated)?;
        let l = self.locate(pkt)?;
        let mut seq = BundleSeq::default();
        let mut spi = 0;
        if let (Some(e), Some(off)) = (&self.esp, l.esp_off) {
            let lo = get_u32(pkt, off + 4);
            seq.esp = if e.esn() {
                esn::infer(lo, highest.esp, self.esn_window)
            } else {
                u64::from(lo)
            };
            spi = e.spi();
        }
        if let (Some(a), Some(off)) = (&self.ah, l.ah_off) {
            let lo = get_u32(pkt, off + 8);
            seq.ah = if a.esn() {
                esn::infer(lo, highest.ah, self.esn_window)
            } else {
                u64::from(lo)
            };
            spi = a.spi();
        }
        let (payload, next_header) = self.payload_of(pkt, &l)?;
        let range = match self.mode {
            Mode::Transport => {
                let new_start = payload
                    .start
                    .checked_sub(l.ip_hl)
                    .ok_or(FrameError::Malformed)?;
                pkt.copy_within(0..l.ip_hl, new_start);
                let ip = pkt
                    .get_mut(new_start..payload.end)
                    .ok_or(FrameError::Truncated)?;
                let total = ip.len();
                if l.ipv6 {
                    let mut v = ipv6::Packet::new_unchecked(ip);
                    v.set_payload_len(
                        u16::try_from(total - ipv6::HEADER_LEN)
                            .map_err(|_| FrameError::TooLarge)?,
                    );
                    v.set_next_header(next_header);
                } else {
                    let mut v = ipv4::Packet::new_unchecked(ip);
                    v.set_total_len(u16::try_from(total).map_err(|_| FrameError::TooLarge)?);
                    v.set_protocol(next_header);
                    v.fill_checksum();
                }
                base + new_start..base + payload.end
            }
            Mode::Tunnel => {
                let body = pkt.get(payload.clone()).ok_or(FrameError::Truncated)?;
                let len = Self::inner_len(body, next_header)?;
                base + payload.start..base + payload.start + len
            }
        };
        Ok(Decapsulated {
            packet: range,
            seq,
            next_header,
            spi,
        })
    }

    /// Tunnel-mode bundles: where the inner IP packet sits inside an unprotected (decrypted)
    /// `packet` (for nested transport-in-tunnel processing by the NIC).
    ///
    /// # Errors
    /// [`FrameError::Unsupported`] in transport mode; parse errors.
    pub fn inner_packet(&self, packet: &[u8]) -> Result<Range<usize>, FrameError> {
        if self.mode != Mode::Tunnel {
            return Err(FrameError::Unsupported);
        }
        let l = self.locate(packet)?;
        let (payload, nh) = self.payload_of(packet, &l)?;
        let body = packet.get(payload.clone()).ok_or(FrameError::Truncated)?;
        let len = Self::inner_len(body, nh)?;
        Ok(payload.start..payload.start + len)
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;
    use crate::classify::{Classified, classify};
    use crate::crypto::provider;
    use crate::params::{Encryption, Integrity, Key, TunnelEndpoints, UdpEncap};

    const ESP_ALGS: [(Encryption, Integrity); 13] = [
        (Encryption::AesGcm128, Integrity::None),
        (Encryption::AesGcm192, Integrity::None),
        (Encryption::AesGcm256, Integrity::None),
        (Encryption::None, Integrity::AesGmac128),
        (Encryption::None, Integrity::AesGmac192),
        (Encryption::None, Integrity::AesGmac256),
        (Encryption::AesCbc128, Integrity::HmacSha1_96),
        (Encryption::AesCbc192, Integrity::HmacSha256_128),
        (Encryption::AesCbc256, Integrity::HmacSha256_128),
        (Encryption::AesCbc128, Integrity::HmacSha256_128),
        (Encryption::AesCbc256, Integrity::HmacSha1_96),
        (Encryption::Null, Integrity::HmacSha1_96),
        (Encryption::Null, Integrity::HmacSha256_128),
    ];
    const AH_ALGS: [Integrity; 5] = [
        Integrity::HmacSha1_96,
        Integrity::HmacSha256_128,
        Integrity::AesGmac128,
        Integrity::AesGmac192,
        Integrity::AesGmac256,
    ];

    fn key(len: usize, seed: u8) -> Key {
        let v: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        Key::new(&v)
    }

    fn endpoints(v6: bool) -> TunnelEndpoints {
        if v6 {
            TunnelEndpoints {
                local: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa)),
                remote: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xb)),
            }
        } else {
            TunnelEndpoints {
                local: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
                remote: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)),
            }
        }
    }

    #[derive(Clone, Copy, Debug)]
    struct Cfg {
        mode: Mode,
        outer_v6: bool,
        esn: bool,
        udp: bool,
    }

    fn esp_sa(enc: Encryption, integ: Integrity, c: Cfg) -> SaParams {
        SaParams {
            spi: 0x0000_1001,
            protocol: Protocol::Esp,
            mode: c.mode,
            encryption: enc,
            encryption_key: key(enc.key_len(), 1),
            integrity: integ,
            integrity_key: key(integ.key_len(), 2),
            esn: c.esn,
            tunnel: (c.mode == Mode::Tunnel).then(|| endpoints(c.outer_v6)),
            udp_encap: c.udp.then_some(UdpEncap {
                local_port: 4500,
                remote_port: 4501,
            }),
        }
    }

    fn ah_sa(integ: Integrity, c: Cfg) -> SaParams {
        SaParams {
            spi: 0x0000_2002,
            protocol: Protocol::Ah,
            mode: c.mode,
            encryption: Encryption::None,
            encryption_key: Key::empty(),
            integrity: integ,
            integrity_key: key(integ.key_len(), 3),
            esn: c.esn,
            tunnel: (c.mode == Mode::Tunnel).then(|| endpoints(c.outer_v6)),
            udp_encap: None,
        }
    }

    /// A cleartext IPv4 (with `opts` option bytes) or IPv6 UDP packet with `n` payload bytes.
    fn inner(v6: bool, n: usize, opts: &[u8]) -> Vec<u8> {
        let mut udp_seg = vec![0u8; 8 + n];
        udp::Repr {
            src_port: 1234,
            dst_port: 5678,
            payload_len: n,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut udp_seg[..]))
        .unwrap();
        for (i, b) in udp_seg[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        if v6 {
            let mut p = vec![0u8; 40];
            ipv6::Repr {
                src_addr: "2001:db8:1::1".parse().unwrap(),
                dst_addr: "2001:db8:2::2".parse().unwrap(),
                next_header: 17,
                payload_len: udp_seg.len(),
                hop_limit: 63,
                traffic_class: 0xb8,
                flow_label: 0x12345,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut p[..]))
            .unwrap();
            p.extend_from_slice(&udp_seg);
            p
        } else {
            let hl = 20 + opts.len();
            let mut p = vec![0u8; hl + udp_seg.len()];
            p[20..hl].copy_from_slice(opts);
            let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
            ip.set_version_and_header_len(hl);
            ip.set_tos(0xb8);
            ip.set_total_len((hl + udp_seg.len()) as u16);
            ip.set_ident(0x4242);
            ip.set_flags_and_frag(true, false, 0);
            ip.set_ttl(63);
            ip.set_protocol(17);
            ip.set_src_addr(Ipv4Addr::new(192, 0, 2, 1));
            ip.set_dst_addr(Ipv4Addr::new(198, 51, 100, 2));
            ip.fill_checksum();
            p[hl..].copy_from_slice(&udp_seg);
            p
        }
    }

    /// Frame and protect `pkt` with exactly `overhead()` bytes of head/tailroom.
    fn outbound(b: &Bundle, pkt: &[u8], seq: BundleSeq) -> Vec<u8> {
        let (head, tail) = b.overhead();
        let mut buf = vec![0u8; head + pkt.len() + tail];
        buf[head..head + pkt.len()].copy_from_slice(pkt);
        let r = b
            .encapsulate(seq, &mut buf, head..head + pkt.len())
            .unwrap();
        b.protect(&mut buf[r.clone()], seq.hi()).unwrap();
        buf[r].to_vec()
    }

    /// Unprotect and decapsulate; returns the cleartext packet.
    fn inbound(b: &Bundle, wire: &[u8], highest: BundleSeq, seq: BundleSeq) -> Vec<u8> {
        let mut w = wire.to_vec();
        let u = b.unprotect(&mut w, highest).unwrap();
        assert_eq!(u.seq.esp, if b.esp.is_some() { seq.esp } else { 0 });
        assert_eq!(u.seq.ah, if b.ah.is_some() { seq.ah } else { 0 });
        let d = b.decapsulate(&mut w, 0..wire.len(), highest).unwrap();
        assert_eq!(d.seq, u.seq);
        assert_eq!(d.next_header, u.next_header);
        w[d.packet].to_vec()
    }

    fn seqs(esn: bool) -> (BundleSeq, BundleSeq) {
        if esn {
            // Across a 2^32 boundary: highest below it, the packet above.
            (
                BundleSeq {
                    esp: (5 << 32) + 7,
                    ah: (9 << 32) + 3,
                },
                BundleSeq {
                    esp: (5 << 32) - 2,
                    ah: (9 << 32) - 1,
                },
            )
        } else {
            (BundleSeq { esp: 7, ah: 3 }, BundleSeq::default())
        }
    }

    fn configs() -> Vec<(Cfg, bool)> {
        let mut v = Vec::new();
        for esn in [false, true] {
            for inner_v6 in [false, true] {
                v.push((
                    Cfg {
                        mode: Mode::Transport,
                        outer_v6: inner_v6,
                        esn,
                        udp: false,
                    },
                    inner_v6,
                ));
                for outer_v6 in [false, true] {
                    v.push((
                        Cfg {
                            mode: Mode::Tunnel,
                            outer_v6,
                            esn,
                            udp: false,
                        },
                        inner_v6,
                    ));
                }
            }
        }
        v
    }

    /// Round trip through every provider, and the providers agree byte for byte.
    fn check(sas: &[SaParams], c: Cfg, inner_v6: bool, n: usize) {
        let pkt = inner(inner_v6, n, &[]);
        let (seq, highest) = seqs(c.esn);
        let mut frames = Vec::new();
        for kind in ProviderKind::available() {
            let b = Bundle::new(sas, *kind).unwrap();
            let wire = outbound(&b, &pkt, seq);
            // The framed packet classifies to the outermost SA.
            let k = match classify(&wire, &[4500, 4501]).unwrap() {
                Classified::Esp(k) | Classified::Ah(k) => k,
                other => panic!("{other:?}"),
            };
            assert_eq!(k.spi, b.first().unwrap().spi());
            assert_eq!(k.udp_encap.is_some(), c.udp);
            if c.mode == Mode::Tunnel {
                let want = endpoints(c.outer_v6);
                assert_eq!((k.src, k.dst), (want.local, want.remote));
            }
            assert_eq!(inbound(&b, &wire, highest, seq), pkt, "{c:?} {sas:?}");
            frames.push(wire);
        }
        // Differential: same SA, same seq, every provider -> identical bytes.
        assert!(
            frames.windows(2).all(|w| w[0] == w[1]),
            "providers differ: {c:?} {sas:?}"
        );
    }

    #[test]
    fn round_trip_esp_matrix() {
        for (enc, integ) in ESP_ALGS {
            for (c, inner_v6) in configs() {
                check(&[esp_sa(enc, integ, c)], c, inner_v6, 37);
                // UDP encapsulation (RFC 3948).
                let cu = Cfg { udp: true, ..c };
                check(&[esp_sa(enc, integ, cu)], cu, inner_v6, 37);
            }
        }
    }

    #[test]
    fn round_trip_ah_matrix() {
        for integ in AH_ALGS {
            for (c, inner_v6) in configs() {
                check(&[ah_sa(integ, c)], c, inner_v6, 37);
            }
        }
    }

    #[test]
    fn round_trip_ah_esp_matrix() {
        for (enc, integ) in ESP_ALGS {
            for ah_integ in AH_ALGS {
                for (c, inner_v6) in configs() {
                    check(
                        &[esp_sa(enc, integ, c), ah_sa(ah_integ, c)],
                        c,
                        inner_v6,
                        21,
                    );
                }
            }
        }
    }

    #[test]
    fn payload_sizes_and_padding() {
        // Every payload length over two cipher blocks exercises every padding length.
        for (enc, integ) in [ESP_ALGS[0], ESP_ALGS[6], ESP_ALGS[12]] {
            let c = Cfg {
                mode: Mode::Transport,
                outer_v6: false,
                esn: false,
                udp: false,
            };
            let b = Bundle::new(&[esp_sa(enc, integ, c)], ProviderKind::RustCrypto).unwrap();
            for n in 0..40 {
                let pkt = inner(false, n, &[]);
                let (seq, highest) = seqs(false);
                let wire = outbound(&b, &pkt, seq);
                let mut w = wire.clone();
                let u = b.unprotect(&mut w, highest).unwrap();
                let body = u.payload.end + usize::from(u.pad_len) + 2;
                assert_eq!((body - (20 + 8)) % b.esp().unwrap().block_size(), 0);
                assert_eq!(inbound(&b, &wire, highest, seq), pkt);
            }
        }
    }

    /// Framing against published bytes: RFC 3602 §4 case #5 (transport mode, AES-CBC without
    /// integrity): our encapsulate of the original packet, sealed with the published IV, is
    /// the published outer IP header + ESP packet.
    #[test]
    fn framing_matches_rfc3602_case5() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../testdata/ipsec-rfc-vectors.json")).unwrap();
        let t = v["esp_packets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "RFC3602-case5")
            .unwrap();
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: false,
            udp: false,
        };
        let mut p = esp_sa(Encryption::AesCbc128, Integrity::None, c);
        p.spi = 0x4321;
        p.encryption_key = Key::new(&hex(t["key"].as_str().unwrap()));
        p.integrity_key = Key::empty();
        for kind in ProviderKind::available() {
            let tr = Transform::new_for_vectors(&p, *kind).unwrap();
            let b = Bundle {
                esp: Some(tr),
                ah: None,
                mode: Mode::Transport,
                esn_window: 64,
            };
            let orig = hex(t["original_packet"].as_str().unwrap());
            let mut buf = vec![0u8; 64 + orig.len() + 32];
            buf[64..64 + orig.len()].copy_from_slice(&orig);
            let r = b
                .encapsulate(BundleSeq { esp: 1, ah: 0 }, &mut buf, 64..64 + orig.len())
                .unwrap();
            let iv = hex(t["iv"].as_str().unwrap());
            b.esp()
                .unwrap()
                .seal_esp(&mut buf[r.start + 20..r.end], 1, &iv)
                .unwrap();
            let mut want = hex(t["outer_ip_header"].as_str().unwrap());
            want.extend(hex(t["esp_packet"].as_str().unwrap()));
            assert_eq!(buf[r.clone()], want[..]);
            // And back.
            let mut w = want.clone();
            b.unprotect(&mut w, BundleSeq::default()).unwrap();
            let d = b
                .decapsulate(&mut w, 0..want.len(), BundleSeq::default())
                .unwrap();
            assert_eq!(w[d.packet], orig[..]);
        }
    }

    /// The ESP AES-GMAC ESN path (in-place save/restore of the AAD) against a direct
    /// computation of RFC 4543 §3.2's AAD: SPI | seq_hi | seq_lo | IV | payload ... next header.
    #[test]
    fn gmac_esn_aad_matches_rfc4543_layout() {
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: true,
            udp: false,
        };
        let sa = esp_sa(Encryption::None, Integrity::AesGmac128, c);
        for kind in ProviderKind::available() {
            let b = Bundle::new(std::slice::from_ref(&sa), *kind).unwrap();
            let seq = BundleSeq {
                esp: (3 << 32) | 9,
                ah: 0,
            };
            let wire = outbound(&b, &inner(false, 10, &[]), seq);
            let esp = &wire[20..];
            let (covered, icv) = esp.split_at(esp.len() - 16);
            let mut aad = covered[..4].to_vec();
            aad.extend_from_slice(&3u32.to_be_bytes());
            aad.extend_from_slice(&covered[4..]);
            let mut nonce = [0u8; 12];
            let k = sa.integrity_key.expose();
            nonce[..4].copy_from_slice(&k[16..]);
            nonce[4..].copy_from_slice(&covered[8..16]);
            let mut tag = [0u8; 16];
            provider(*kind)
                .unwrap()
                .aes_gcm(&k[..16])
                .unwrap()
                .seal_in_place_detached(&nonce, &aad, &mut [], &mut tag)
                .unwrap();
            assert_eq!(icv, tag);
            assert_eq!(&covered[8..16], &seq.esp.to_be_bytes()); // IV = seq
        }
    }

    /// ESP with HMAC and ESN: the ICV covers SPI..Next Header then seq_hi (RFC 4303 §2.2.1).
    #[test]
    fn hmac_esn_icv_appends_seq_hi() {
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: true,
            udp: false,
        };
        let sa = esp_sa(Encryption::Null, Integrity::HmacSha256_128, c);
        let b = Bundle::new(std::slice::from_ref(&sa), ProviderKind::RustCrypto).unwrap();
        let seq = BundleSeq {
            esp: (0xabcd << 32) | 1,
            ah: 0,
        };
        let wire = outbound(&b, &inner(false, 10, &[]), seq);
        let esp = &wire[20..];
        let (covered, icv) = esp.split_at(esp.len() - 16);
        let mac = provider(ProviderKind::RustCrypto)
            .unwrap()
            .hmac(true, sa.integrity_key.expose())
            .unwrap();
        let mut out = [0u8; 16];
        mac.compute(&[covered, &0xabcdu32.to_be_bytes()], &mut out);
        assert_eq!(icv, out);
    }

    #[test]
    fn tunnel_outer_header_rules() {
        let c = Cfg {
            mode: Mode::Tunnel,
            outer_v6: false,
            esn: false,
            udp: false,
        };
        let b = Bundle::new(
            &[esp_sa(Encryption::AesGcm128, Integrity::None, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let wire = outbound(
            &b,
            &inner(false, 5, &[]),
            BundleSeq {
                esp: 0x1_2345,
                ah: 0,
            },
        );
        let ip = ipv4::Packet::new_checked(&wire[..]).unwrap();
        let r = ipv4::Repr::parse(&ip).unwrap();
        assert_eq!(r.ttl, 64);
        assert_eq!(r.tos, 0xb8);
        assert!(r.dont_frag);
        assert_eq!(r.ident, 0x2345);
        assert_eq!(r.protocol, 50);
        assert_eq!(usize::from(ip.total_len()), wire.len());
        // IPv6 inner under an IPv4 outer: DF clear.
        let wire = outbound(&b, &inner(true, 5, &[]), BundleSeq { esp: 1, ah: 0 });
        assert!(!ipv4::Packet::new_checked(&wire[..]).unwrap().dont_frag());
        let mut w = wire.clone();
        b.unprotect(&mut w, BundleSeq::default()).unwrap();
        assert_eq!(b.inner_packet(&w).unwrap().len(), 40 + 8 + 5);
        let c = Cfg {
            mode: Mode::Tunnel,
            outer_v6: true,
            ..c
        };
        let b = Bundle::new(
            &[esp_sa(Encryption::AesGcm128, Integrity::None, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let wire = outbound(&b, &inner(false, 5, &[]), BundleSeq { esp: 1, ah: 0 });
        let ip = ipv6::Repr::parse(&ipv6::Packet::new_checked(&wire[..]).unwrap()).unwrap();
        assert_eq!(
            (
                ip.hop_limit,
                ip.traffic_class,
                ip.flow_label,
                ip.next_header
            ),
            (64, 0xb8, 0, 50)
        );
    }

    /// AH: the mutable fields (RFC 4302 §3.3.3.1) may change in transit, nothing else may.
    #[test]
    fn ah_mutable_fields() {
        // Record Route (type 7, mutable) + Router Alert (148, immutable) + EOL padding.
        let opts = [7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 0];
        for integ in AH_ALGS {
            let c = Cfg {
                mode: Mode::Transport,
                outer_v6: false,
                esn: true,
                udp: false,
            };
            let b = Bundle::new(&[ah_sa(integ, c)], ProviderKind::RustCrypto).unwrap();
            let pkt = inner(false, 9, &opts);
            let (seq, highest) = seqs(true);
            let wire = outbound(&b, &pkt, seq);
            let mut moved = wire.clone();
            {
                let mut ip = ipv4::Packet::new_unchecked(&mut moved[..]);
                ip.set_ttl(3);
                ip.set_tos(0x04);
                ip.set_flags_and_frag(false, false, 0);
                ip.fill_checksum();
            }
            moved[20 + 3..20 + 7].copy_from_slice(&[198, 51, 100, 7]); // a router recorded itself
            assert_eq!(inbound(&b, &moved, highest, seq).len(), pkt.len());
            // Router Alert is immutable.
            let mut bad = wire.clone();
            bad[20 + 9] ^= 1;
            let mut b2 = bad.clone();
            assert!(matches!(
                b.unprotect(&mut b2, highest),
                Err(CryptoError::AuthFailed { .. })
            ));
            // A source-route option is refused.
            let mut lsrr = inner(false, 9, &[131, 7, 4, 0, 0, 0, 0, 0]);
            let (h, t) = b.overhead();
            let n = lsrr.len();
            let mut buf = vec![0u8; h + n + t];
            buf[h..h + n].copy_from_slice(&lsrr);
            let r = b.encapsulate(seq, &mut buf, h..h + n).unwrap();
            assert_eq!(
                b.protect(&mut buf[r], seq.hi()),
                Err(CryptoError::Unsupported)
            );
            lsrr.clear();
        }
        // IPv6: traffic class, flow label and hop limit are mutable.
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: true,
            esn: false,
            udp: false,
        };
        let b = Bundle::new(
            &[ah_sa(Integrity::HmacSha256_128, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let pkt = inner(true, 9, &[]);
        let wire = outbound(&b, &pkt, BundleSeq { esp: 0, ah: 1 });
        let mut moved = wire.clone();
        ipv6::Packet::new_unchecked(&mut moved[..]).set_version_tc_flow(0, 7);
        ipv6::Packet::new_unchecked(&mut moved[..]).set_hop_limit(1);
        let mut m = moved.clone();
        b.unprotect(&mut m, BundleSeq::default()).unwrap();
        moved[8] ^= 1; // source address
        assert!(matches!(
            b.unprotect(&mut moved, BundleSeq::default()),
            Err(CryptoError::AuthFailed {
                protocol: Protocol::Ah,
                mode: Mode::Transport
            })
        ));
    }

    /// Every single-bit flip in the ICV-covered bytes is rejected.
    #[test]
    fn every_bit_flip_rejected() {
        let cases: Vec<(Vec<SaParams>, Cfg)> = {
            let t = Cfg {
                mode: Mode::Transport,
                outer_v6: false,
                esn: true,
                udp: false,
            };
            let n = Cfg {
                mode: Mode::Tunnel,
                ..t
            };
            vec![
                (vec![esp_sa(Encryption::AesGcm128, Integrity::None, t)], t),
                (vec![esp_sa(Encryption::None, Integrity::AesGmac128, n)], n),
                (
                    vec![esp_sa(Encryption::AesCbc128, Integrity::HmacSha1_96, t)],
                    t,
                ),
                (
                    vec![esp_sa(Encryption::Null, Integrity::HmacSha256_128, n)],
                    n,
                ),
                (
                    vec![
                        esp_sa(Encryption::AesCbc256, Integrity::HmacSha256_128, t),
                        ah_sa(Integrity::AesGmac128, t),
                    ],
                    t,
                ),
            ]
        };
        let (seq, highest) = seqs(true);
        for (sas, c) in cases {
            let b = Bundle::new(&sas, ProviderKind::RustCrypto).unwrap();
            let wire = outbound(&b, &inner(false, 3, &[]), seq);
            // ESP alone covers its own bytes; AH also the IP header's immutable fields.
            let from = if b.ah.is_some() { 0 } else { 20 };
            let mutable = [1usize, 6, 7, 8, 10, 11];
            for byte in from..wire.len() {
                if b.ah.is_some() && mutable.contains(&byte) {
                    continue;
                }
                for bit in 0..8 {
                    let mut w = wire.clone();
                    w[byte] ^= 1 << bit;
                    assert!(
                        b.unprotect(&mut w, highest).is_err(),
                        "{c:?} byte {byte} bit {bit}"
                    );
                }
            }
            let _ = c;
        }
    }

    #[test]
    fn bad_padding_and_pad_length() {
        for (enc, integ) in [ESP_ALGS[0], ESP_ALGS[6], ESP_ALGS[11], ESP_ALGS[3]] {
            let c = Cfg {
                mode: Mode::Transport,
                outer_v6: false,
                esn: false,
                udp: false,
            };
            let b = Bundle::new(&[esp_sa(enc, integ, c)], ProviderKind::RustCrypto).unwrap();
            let pkt = inner(false, 1, &[]); // 9-byte UDP segment: non-zero padding
            let (h, t) = b.overhead();
            for corrupt in ["pad", "len"] {
                let mut buf = vec![0u8; h + pkt.len() + t];
                buf[h..h + pkt.len()].copy_from_slice(&pkt);
                let r = b
                    .encapsulate(BundleSeq { esp: 1, ah: 0 }, &mut buf, h..h + pkt.len())
                    .unwrap();
                let icv = b.esp().unwrap().icv_len();
                let pl_at = r.end - icv - 2;
                assert!(buf[pl_at] > 0);
                match corrupt {
                    "pad" => buf[pl_at - 1] ^= 0x40,
                    _ => buf[pl_at] = 200,
                }
                b.protect(&mut buf[r.clone()], BundleSeqHi::default())
                    .unwrap();
                let mut w = buf[r.clone()].to_vec();
                assert_eq!(
                    b.unprotect(&mut w, BundleSeq::default()),
                    Err(CryptoError::BadPadding)
                );
                let n = w.len();
                assert!(b.decapsulate(&mut w, 0..n, BundleSeq::default()).is_err());
            }
        }
    }

    fn sample_bundles() -> Vec<Bundle> {
        let t = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: true,
            udp: false,
        };
        let n = Cfg {
            mode: Mode::Tunnel,
            outer_v6: true,
            esn: false,
            udp: false,
        };
        let u = Cfg { udp: true, ..t };
        [
            vec![esp_sa(Encryption::AesGcm128, Integrity::None, t)],
            vec![esp_sa(Encryption::AesCbc128, Integrity::HmacSha1_96, n)],
            vec![esp_sa(Encryption::None, Integrity::AesGmac256, u)],
            vec![ah_sa(Integrity::AesGmac128, n)],
            vec![
                esp_sa(Encryption::Null, Integrity::HmacSha256_128, t),
                ah_sa(Integrity::HmacSha1_96, t),
            ],
        ]
        .iter()
        .map(|s| Bundle::new(s, ProviderKind::RustCrypto).unwrap())
        .collect()
    }

    /// Truncated packets of every length are rejected without panicking, both with the
    /// original length fields and with the IP length fixed up to the cut.
    #[test]
    fn truncation_of_every_length() {
        for b in sample_bundles() {
            let v6 = b.tunnel_v6().unwrap_or(false);
            let seq = BundleSeq { esp: 5, ah: 5 };
            let wire = outbound(&b, &inner(false, 12, &[]), seq);
            for cut in 0..wire.len() {
                let mut w = wire[..cut].to_vec();
                assert!(b.unprotect(&mut w, BundleSeq::default()).is_err(), "{cut}");
                assert!(
                    b.decapsulate(&mut w, 0..cut, BundleSeq::default()).is_err(),
                    "{cut}"
                );
                let _ = b.inner_packet(&w);
                let hl = if v6 { 40 } else { 20 };
                if cut >= hl {
                    let mut w = wire[..cut].to_vec();
                    if v6 {
                        ipv6::Packet::new_unchecked(&mut w[..]).set_payload_len((cut - 40) as u16);
                    } else {
                        let mut ip = ipv4::Packet::new_unchecked(&mut w[..]);
                        ip.set_total_len(cut as u16);
                        ip.fill_checksum();
                    }
                    assert!(
                        b.unprotect(&mut w, BundleSeq::default()).is_err(),
                        "fixed {cut}"
                    );
                }
            }
        }
    }

    #[test]
    fn encapsulate_errors() {
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: false,
            udp: false,
        };
        let b = Bundle::new(
            &[esp_sa(Encryption::AesCbc128, Integrity::HmacSha1_96, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let pkt = inner(false, 10, &[]);
        let (h, t) = b.overhead();
        let n = pkt.len();
        let mut buf = vec![0u8; h + n + t];
        buf[h..h + n].copy_from_slice(&pkt);
        let s = BundleSeq { esp: 1, ah: 0 };
        let mut small = buf[1..].to_vec();
        assert_eq!(
            b.encapsulate(s, &mut small, h - 1..h - 1 + n),
            Err(FrameError::NoRoom)
        );
        let mut short_tail = buf[..h + n].to_vec();
        assert_eq!(
            b.encapsulate(s, &mut short_tail, h..h + n),
            Err(FrameError::NoRoom)
        );
        let big = BundleSeq {
            esp: 1 << 32,
            ah: 0,
        };
        assert_eq!(
            b.encapsulate(big, &mut buf.clone(), h..h + n),
            Err(FrameError::SeqOverflow)
        );
        let mut frag = buf.clone();
        ipv4::Packet::new_unchecked(&mut frag[h..]).set_flags_and_frag(false, true, 0);
        assert_eq!(
            b.encapsulate(s, &mut frag, h..h + n),
            Err(FrameError::Unsupported)
        );
        assert_eq!(
            b.encapsulate(s, &mut buf.clone(), h..h + n + t + 1),
            Err(FrameError::Truncated)
        );
        // IPv6 with an extension header in transport mode.
        let p6 = inner(true, 10, &[]);
        let mut buf6 = vec![0u8; h + p6.len() + t];
        buf6[h..h + p6.len()].copy_from_slice(&p6);
        buf6[h + 6] = 0; // hop-by-hop
        assert_eq!(
            b.encapsulate(s, &mut buf6, h..h + p6.len()),
            Err(FrameError::Unsupported)
        );
        // Too large.
        let huge = inner(false, 65_500, &[]);
        let mut hb = vec![0u8; h + huge.len() + t];
        hb[h..h + huge.len()].copy_from_slice(&huge);
        assert_eq!(
            b.encapsulate(s, &mut hb, h..h + huge.len()),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn mismatches() {
        let c = Cfg {
            mode: Mode::Transport,
            outer_v6: false,
            esn: false,
            udp: false,
        };
        let esp = Bundle::new(
            &[esp_sa(Encryption::AesGcm128, Integrity::None, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let ah = Bundle::new(
            &[ah_sa(Integrity::HmacSha1_96, c)],
            ProviderKind::RustCrypto,
        )
        .unwrap();
        let wire = outbound(&esp, &inner(false, 4, &[]), BundleSeq { esp: 1, ah: 1 });
        assert_eq!(
            ah.unprotect(&mut wire.clone(), BundleSeq::default()),
            Err(CryptoError::ProtocolMismatch)
        );
        let mut other = esp_sa(Encryption::AesGcm128, Integrity::None, c);
        other.spi = 0x9999;
        let other = Bundle::new(&[other], ProviderKind::RustCrypto).unwrap();
        assert_eq!(
            other.unprotect(&mut wire.clone(), BundleSeq::default()),
            Err(CryptoError::SpiMismatch)
        );
        let n = wire.len();
        assert_eq!(
            other.decapsulate(&mut wire.clone(), 0..n, BundleSeq::default()),
            Err(FrameError::SpiMismatch)
        );
        assert_eq!(esp.inner_packet(&wire), Err(FrameError::Unsupported));
        // Bundle shape rules.
        let e = esp_sa(Encryption::AesGcm128, Integrity::None, c);
        let a = ah_sa(Integrity::HmacSha1_96, c);
        assert_eq!(
            Bundle::new(&[], ProviderKind::RustCrypto).unwrap_err(),
            ParamError::InvalidBundle
        );
        assert_eq!(
            Bundle::new(&[a.clone(), e.clone()], ProviderKind::RustCrypto).unwrap_err(),
            ParamError::InvalidBundle
        );
        let eu = esp_sa(
            Encryption::AesGcm128,
            Integrity::None,
            Cfg { udp: true, ..c },
        );
        assert_eq!(
            Bundle::new(&[eu, a], ProviderKind::RustCrypto).unwrap_err(),
            ParamError::UdpEncapOnAh
        );
    }

    #[test]
    fn bundle_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Bundle>();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160),
                                       hl in prop_oneof![Just(0x45u8), Just(0x60), Just(0x46)]) {
            let mut bytes = bytes;
            if let Some(b) = bytes.first_mut() { *b = hl; }
            for b in sample_bundles() {
                let n = bytes.len();
                let _ = b.unprotect(&mut bytes.clone(), BundleSeq::default());
                let _ = b.decapsulate(&mut bytes.clone(), 0..n, BundleSeq::default());
                let _ = b.inner_packet(&bytes);
                let _ = b.protect(&mut bytes.clone(), BundleSeqHi::default());
                let _ = b.encapsulate(BundleSeq::default(), &mut bytes.clone(), 0..n);
            }
        }

        #[test]
        fn mutated_valid_packets_never_panic(idx in any::<prop::sample::Index>(), val in any::<u8>(),
                                              cut in any::<prop::sample::Index>()) {
            for b in sample_bundles() {
                let wire = outbound(&b, &inner(false, 7, &[]), BundleSeq { esp: 3, ah: 3 });
                let mut w = wire.clone();
                let i = idx.index(w.len());
                w[i] = val;
                let w = &mut w[..cut.index(wire.len() + 1).max(1).min(wire.len())];
                let n = w.len();
                let _ = b.unprotect(&mut w.to_vec(), BundleSeq::default());
                let _ = b.decapsulate(&mut w.to_vec(), 0..n, BundleSeq::default());
                let _ = b.inner_packet(w);
            }
        }
    }
}
