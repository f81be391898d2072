package cli

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// dockerHub is the server name the docker CLI keeps Docker Hub's login under.
const dockerHub = "https://index.docker.io/v1/"

// serverOf is the registry an image reference names, as the login is kept.
func serverOf(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return dockerHub
	}
	if d := reference.Domain(named); d != "docker.io" {
		return d
	}
	return dockerHub
}

// registryAuth is the X-Registry-Auth value for server: the credentials the
// docker CLI's config (shared with it: $DOCKER_CONFIG or ~/.docker) keeps.
func (a *app) registryAuth(server string) string {
	cf := dockerconfig.LoadDefaultConfigFile(a.err)
	ac, err := cf.GetAuthConfig(server)
	if err != nil || ac == (types.AuthConfig{}) {
		return ""
	}
	b, err := json.Marshal(registry.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: server,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken})
	if err != nil {
		return ""
	}
	return base64.URLEncoding.EncodeToString(b)
}

func (a *app) loginCmd() *cobra.Command {
	var user, password string
	var stdin bool
	cmd := &cobra.Command{
		Use: "login [OPTIONS] [SERVER]", Short: "Authenticate to a registry", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := dockerHub
			if len(args) == 1 {
				server = args[0]
			}
			if stdin {
				b, err := io.ReadAll(bufio.NewReader(a.in))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || password == "" {
				return errors.New("a username (-u) and a password (-p or --password-stdin) are needed")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.RegistryLogin(cmd.Context(), client.RegistryLoginOptions{Username: user, Password: password, ServerAddress: server}); err != nil {
				return err
			}
			cf := dockerconfig.LoadDefaultConfigFile(a.err)
			if err := cf.GetCredentialsStore(server).Store(types.AuthConfig{Username: user, Password: password, ServerAddress: server}); err != nil {
				return fmt.Errorf("store the credentials: %w", err)
			}
			fmt.Fprintln(a.out, "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func (a *app) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use: "logout [SERVER]", Short: "Log out from a registry", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := dockerHub
			if len(args) == 1 {
				server = args[0]
			}
			cf := dockerconfig.LoadDefaultConfigFile(a.err)
			if err := cf.GetCredentialsStore(server).Erase(server); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}
