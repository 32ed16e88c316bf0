package connector_test

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
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
// settings the connector configs rely on (JSON without schemas, the file and dir config
// providers, the shard secrets mounted where ${file:secrets/...} resolves and the
// tokenizer secret where ${dir:tokenizer:...} does), and it loads the tokenize
// transform built from this repository (the jar's sha512 pinned).
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
					Name      string `yaml:"name"`
					Artifacts []struct {
						Type   string `yaml:"type"`
						URL    string `yaml:"url"`
						SHA512 string `yaml:"sha512sum"`
					} `yaml:"artifacts"`
				} `yaml:"plugins"`
			} `yaml:"build"`
			Template struct {
				Pod struct {
					Volumes []struct {
						Name   string `yaml:"name"`
						Secret struct {
							SecretName string `yaml:"secretName"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"pod"`
				ConnectContainer struct {
					VolumeMounts []struct {
						Name      string `yaml:"name"`
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
	plugins := kc.Spec.Build.Plugins
	if len(plugins) != 2 || len(plugins[0].Artifacts) != 1 ||
		!strings.Contains(plugins[0].Artifacts[0].URL, "/debezium-connector-postgres/"+string(debezium[1])+"/") {
		t.Fatalf("plugins %+v, want the tested Debezium %s and the tokenize transform", plugins, debezium[1])
	}
	// Debezium's plugin: Maven Central's archive, the one make deps-cdc resolves (sha512 pinned)
	dbz := plugins[0].Artifacts[0]
	archive := "debezium-connector-postgres-" + string(debezium[1]) + "-plugin.tar.gz"
	if dbz.Type != "tgz" || dbz.URL != "https://repo1.maven.org/maven2/io/debezium/debezium-connector-postgres/"+string(debezium[1])+"/"+archive {
		t.Errorf("Debezium artifact %+v, want the tgz %s from Maven Central", dbz, archive)
	}
	if tgz, err := os.ReadFile(filepath.Join(root, "var", "cdc", "m2", "io", "debezium", "debezium-connector-postgres", string(debezium[1]), archive)); err != nil {
		testenv.Missing(t, "the Debezium plugin archive is not resolved: run `make deps-cdc`")
	} else if sum := sha512.Sum512(tgz); dbz.SHA512 != hex.EncodeToString(sum[:]) {
		t.Errorf("Debezium sha512sum %s, but the archive make deps-cdc resolved is %x: update the manifest", dbz.SHA512, sum)
	}
	// the transform: the jar make deps-cdc builds (reproducibly) from docker/connect/tokenize
	if tp := plugins[1]; tp.Name != "shardflow-tokenize" || len(tp.Artifacts) != 1 || tp.Artifacts[0].Type != "jar" {
		t.Errorf("plugin %+v, want shardflow-tokenize, one jar", tp)
	} else if jar, err := os.ReadFile(filepath.Join(root, "var", "cdc", "plugins", "shardflow-tokenize", "shardflow-tokenize.jar")); err != nil {
		testenv.Missing(t, "the tokenize transform's jar is not built: run `make deps-cdc`")
	} else if sum := sha512.Sum512(jar); tp.Artifacts[0].SHA512 != hex.EncodeToString(sum[:]) {
		t.Errorf("shardflow-tokenize sha512sum %s, but the jar built from docker/connect/tokenize is %x: update the manifest (and upload that jar)", tp.Artifacts[0].SHA512, sum)
	}
	for k, want := range map[string]any{
		"key.converter.schemas.enable": false, "value.converter.schemas.enable": false,
		"value.converter":             "org.apache.kafka.connect.json.JsonConverter",
		"config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
		"config.providers.dir.class":  "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
	} {
		if kc.Spec.Config[k] != want {
			t.Errorf("config %s = %v, want %v", k, kc.Spec.Config[k], want)
		}
	}
	if !strings.Contains(fmt.Sprint(kc.Spec.Config["config.providers"]), "dir") {
		t.Errorf("config.providers %v lacks dir (the transform's key)", kc.Spec.Config["config.providers"])
	}
	secrets := map[string]string{} // volume → secret
	for _, v := range kc.Spec.Template.Pod.Volumes {
		secrets[v.Name] = v.Secret.SecretName
	}
	mounted := map[string]string{} // mount path → secret
	for _, m := range kc.Spec.Template.ConnectContainer.VolumeMounts {
		mounted[m.MountPath] = secrets[m.Name]
	}
	// relative references resolve against Strimzi's working directory, /opt/kafka
	if len(mounted) != 2 || mounted["/opt/kafka/"+connector.SecretsDir] == "" || mounted["/opt/kafka/"+connector.TokenizerDir] != reg.Tokenizer.Key.K8sSecret {
		t.Errorf("mounts %v, want the shard secrets at /opt/kafka/%s and tokenizer.key.k8s_secret %s at /opt/kafka/%s",
			mounted, connector.SecretsDir, reg.Tokenizer.Key.K8sSecret, connector.TokenizerDir)
	}
	// the source producers' settings are the ones the local worker is measured with
	// (test/harness/cdc/stack.sh, make bench-cdc): acks=all and idempotence among them
	stack, err := os.ReadFile(filepath.Join(root, "test", "harness", "cdc", "stack.sh"))
	if err != nil {
		t.Fatal(err)
	}
	local := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(producer\.[a-z.]+)=(.*)$`).FindAllStringSubmatch(string(stack), -1) {
		local[m[1]] = m[2]
	}
	prodProducer := map[string]string{}
	for k, v := range kc.Spec.Config {
		if strings.HasPrefix(k, "producer.") {
			prodProducer[k] = fmt.Sprint(v)
		}
	}
	if fmt.Sprint(local) != fmt.Sprint(prodProducer) {
		t.Errorf("producer settings: Strimzi %v, the local worker (stack.sh) %v: keep them the same", prodProducer, local)
	}
	if local["producer.acks"] != "all" || local["producer.enable.idempotence"] != "true" {
		t.Errorf("producer settings %v: want acks=all and enable.idempotence=true (no loss, no duplicate, order kept)", local)
	}
}
