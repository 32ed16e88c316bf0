package connector_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/shopsphere/shardflow/internal/connector"
	"github.com/shopsphere/shardflow/internal/registry"
	"github.com/shopsphere/shardflow/internal/testenv"
)

// TestStrimziConnectMatchesTheRegistry: the production Kafka Connect cluster
// (docker/connect/strimzi/kafka-connect.yaml) is the one shards.yaml's production
// environment names: its REST service is kafka.connect_url, it bootstraps from
// kafka.brokers, it runs the Debezium version the local stack tests and the worker
// settings the connector configs rely on (JSON without schemas, the file config
// provider, the secrets mounted where ${file:secrets/...} resolves).
func TestStrimziConnectMatchesTheRegistry(t *testing.T) {
	root := testenv.Root(t)
	reg, err := registry.Load(filepath.Join(root, "shards.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	prod := reg.Environments["production"]
	b, err := os.ReadFile(filepath.Join(root, "docker", "connect", "strimzi", "kafka-connect.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kc struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name        string            `yaml:"name"`
			Namespace   string            `yaml:"namespace"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			Version          string         `yaml:"version"`
			BootstrapServers string         `yaml:"bootstrapServers"`
			Config           map[string]any `yaml:"config"`
			Build            struct {
				Plugins []struct {
					Artifacts []struct {
						URL string `yaml:"url"`
					} `yaml:"artifacts"`
				} `yaml:"plugins"`
			} `yaml:"build"`
			Template struct {
				ConnectContainer struct {
					VolumeMounts []struct {
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"connectContainer"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		t.Fatal(err)
	}
	if kc.Kind != "KafkaConnect" || kc.Metadata.Annotations["strimzi.io/use-connector-resources"] != "false" {
		t.Errorf("kind %s, annotations %v: want a KafkaConnect whose connectors the REST API manages", kc.Kind, kc.Metadata.Annotations)
	}
	// Strimzi names the REST service <name>-connect-api, port 8083
	if want := "http://" + kc.Metadata.Name + "-connect-api." + kc.Metadata.Namespace + ":8083"; prod.Kafka.ConnectURL != want {
		t.Errorf("production kafka.connect_url %s, want the Strimzi service %s", prod.Kafka.ConnectURL, want)
	}
	if kc.Spec.BootstrapServers != strings.Join(prod.Kafka.Brokers, ",") {
		t.Errorf("bootstrapServers %s, want production kafka.brokers %v", kc.Spec.BootstrapServers, prod.Kafka.Brokers)
	}
	pom, err := os.ReadFile(filepath.Join(root, "test", "harness", "cdc", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	kafka := regexp.MustCompile(`<kafka.version>([^<]+)<`).FindSubmatch(pom)
	debezium := regexp.MustCompile(`<debezium.version>([^<]+)<`).FindSubmatch(pom)
	if kafka == nil || debezium == nil {
		t.Fatal("no kafka.version or debezium.version in the CDC stack's pom.xml")
	}
	if kc.Spec.Version != string(kafka[1]) {
		t.Errorf("Kafka Connect %s, want the tested %s", kc.Spec.Version, kafka[1])
	}
	if len(kc.Spec.Build.Plugins) != 1 || len(kc.Spec.Build.Plugins[0].Artifacts) != 1 ||
		!strings.Contains(kc.Spec.Build.Plugins[0].Artifacts[0].URL, "/debezium-connector-postgres/"+string(debezium[1])+"/") {
		t.Errorf("plugins %+v, want the tested Debezium %s", kc.Spec.Build.Plugins, debezium[1])
	}
	for k, want := range map[string]any{
		"key.converter.schemas.enable": false, "value.converter.schemas.enable": false,
		"value.converter":             "org.apache.kafka.connect.json.JsonConverter",
		"config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
	} {
		if kc.Spec.Config[k] != want {
			t.Errorf("config %s = %v, want %v", k, kc.Spec.Config[k], want)
		}
	}
	mounts := kc.Spec.Template.ConnectContainer.VolumeMounts
	if len(mounts) != 1 || mounts[0].MountPath != "/opt/kafka/"+connector.SecretsDir {
		t.Errorf("volume mounts %+v, want the shard secrets at /opt/kafka/%s (Strimzi's working directory)", mounts, connector.SecretsDir)
	}
}
