package report

// The nats-server sync settings the benchmark names specially; any other is
// a sync_interval duration.
const (
	// SyncDefault leaves sync_interval unset: the file store fsyncs every
	// 2 minutes (nats-server's default), and a PubAck means the message is
	// in the operating system's page cache.
	SyncDefault = "default"
	// SyncAlways fsyncs every write before its PubAck.
	SyncAlways = "always"
)
