package daemon

import (
	"log/slog"
	"time"

	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/nri"
)

// newNRI is NRI as the [nri] table configures it; nil when it is off.
func newNRI(c config.NRI, log *slog.Logger) (*nri.NRI, error) {
	if !c.Enable {
		return nil, nil
	}
	n, err := nri.New(nri.Config{
		Socket: c.SocketPath, PluginPath: c.PluginPath, PluginConfigPath: c.PluginConfigPath,
		RegistrationTimeout: time.Duration(c.PluginRegistrationTimeout), RequestTimeout: time.Duration(c.PluginRequestTimeout),
		RuntimeName: "berth", RuntimeVersion: version.Version,
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("NRI serving", slog.String("socket", c.SocketPath), slog.String("plugins", c.PluginPath))
	return n, nil
}
