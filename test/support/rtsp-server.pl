# A small RTSP server for the camera tests (Debian's librtsp-server-perl): a source publishes with ffmpeg
# (ANNOUNCE/RECORD) on the source port, cameras read on the client port; RTP over UDP from rtp_start_port.
# Usage: perl rtsp-server.pl <client port> <source port> <rtp start port>
use strict;
use warnings;
use AnyEvent;
use RTSP::Server;

my ($client_port, $source_port, $rtp_port) = @ARGV;
my $server = RTSP::Server->new(
  client_listen_port => $client_port, source_listen_port => $source_port, rtp_start_port => $rtp_port,
  client_listen_address => '127.0.0.1', source_listen_address => '127.0.0.1', log_level => 2,
);
$server->listen;
$| = 1;
print "listening\n";
AnyEvent->condvar->recv;
