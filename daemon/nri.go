package daemon

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/berth-runtime/berth/internal/config"
	"github.com/berth-runtime/berth/internal/version"
	"github.com/berth-runtime/berth/nri"
)

// newNRI is NRI as the [nri] table configures it; nil when it is off.
func newNRI(c config.NRI, obs nri.Observer, log *slog.Logger) (*nri.NRI, error) {
	if !c.Enable {
		return nil, nil
	}
	n, err := nri.New(nri.Config{
		Socket: c.SocketPath, PluginPath: c.PluginPath, PluginConfigPath: c.PluginConfigPath,
		RegistrationTimeout: time.Duration(c.PluginRegistrationTimeout), RequestTimeout: time.Duration(c.PluginRequestTimeout),
		RuntimeName: "berth", RuntimeVersion: version.Version, Observer: obs,
	}, log)
	if err != nil {
		return nil, err
	}
	log.Info("NRI serving", slog.String("socket", c.SocketPath), slog.String("plugins", c.PluginPath))
	return n, nil
}

// nriDetail says what NRI does on this node: off, or where plugins connect
// and which pre-registered ones berthd starts.
func nriDetail(c config.NRI) string {
	if !c.Enable {
		return "off ([nri] enable = false)"
	}
	names := nri.Plugins(c.PluginPath)
	where := "plugins connect on " + c.SocketPath
	if c.SocketPath == "" {
		where = "no plugin may connect (socket_path is empty)"
	}
	if len(names) == 0 {
		return fmt.Sprintf("on: %s; no pre-registered plugin in %s", where, c.PluginPath)
	}
	return fmt.Sprintf("on: %s; pre-registered in %s: %s", where, c.PluginPath, strings.Join(names, ", "))
}
