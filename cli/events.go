package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eventsCmd is docker events: the daemon's events as they come (until
// --until, or the end of the command).
func (a *app) eventsCmd() *cobra.Command {
	var since, until string
	var filters []string
	cmd := &cobra.Command{
		Use: "events [OPTIONS]", Short: "Get real time events from the server", Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			o := client.EventsListOptions{Since: since, Until: until, Filters: client.Filters{}}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				o.Filters.Add(k, v)
			}
			res := c.Events(cmd.Context(), o)
			for {
				select {
				case m := <-res.Messages:
					var attrs []string
					for k, v := range m.Actor.Attributes {
						attrs = append(attrs, k+"="+v)
					}
					fmt.Fprintf(a.out, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format(time.RFC3339Nano), m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
				case err := <-res.Err:
					if err == nil || strings.Contains(err.Error(), "EOF") {
						return nil
					}
					return err
				case <-cmd.Context().Done():
					return nil
				}
			}
		}),
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}
