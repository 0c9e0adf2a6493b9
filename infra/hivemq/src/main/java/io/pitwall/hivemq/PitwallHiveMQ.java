package io.pitwall.hivemq;

import com.hivemq.embedded.EmbeddedExtension;
import com.hivemq.embedded.EmbeddedHiveMQ;
import com.hivemq.extension.sdk.api.ExtensionMain;
import com.hivemq.extension.sdk.api.auth.PublishAuthorizer;
import com.hivemq.extension.sdk.api.auth.SimpleAuthenticator;
import com.hivemq.extension.sdk.api.auth.SubscriptionAuthorizer;
import com.hivemq.extension.sdk.api.auth.parameter.PublishAuthorizerInput;
import com.hivemq.extension.sdk.api.auth.parameter.PublishAuthorizerOutput;
import com.hivemq.extension.sdk.api.auth.parameter.SimpleAuthInput;
import com.hivemq.extension.sdk.api.auth.parameter.SimpleAuthOutput;
import com.hivemq.extension.sdk.api.auth.parameter.SubscriptionAuthorizerInput;
import com.hivemq.extension.sdk.api.auth.parameter.SubscriptionAuthorizerOutput;
import com.hivemq.extension.sdk.api.client.parameter.ConnectionInformation;
import com.hivemq.extension.sdk.api.packets.connect.ConnackReasonCode;
import com.hivemq.extension.sdk.api.packets.publish.AckReasonCode;
import com.hivemq.extension.sdk.api.packets.subscribe.SubackReasonCode;
import com.hivemq.extension.sdk.api.parameter.ExtensionStartInput;
import com.hivemq.extension.sdk.api.parameter.ExtensionStartOutput;
import com.hivemq.extension.sdk.api.parameter.ExtensionStopInput;
import com.hivemq.extension.sdk.api.parameter.ExtensionStopOutput;
import com.hivemq.extension.sdk.api.services.Services;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * HiveMQ CE started in-process with Pitwall's security, the same as Mosquitto's configuration:
 * the client certificate (verified by the TLS listener against the fleet CA) is required, its CN is
 * the identity, a certificate on the CA's CRL is refused (the CRL is read at each connect), and
 * what an identity may publish or subscribe comes from the Mosquitto ACL file (infra/mosquitto/acl).
 *
 * Usage: PitwallHiveMQ <config folder> <data folder> <acl file> <crl file>
 */
public final class PitwallHiveMQ {
  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: PitwallHiveMQ <config folder> <data folder> <acl file> <crl file>");
      System.exit(2);
    }
    Path acl = Path.of(args[2]);
    Path crl = Path.of(args[3]);
    EmbeddedExtension security = EmbeddedExtension.builder()
        .withId("pitwall-security")
        .withName("Pitwall certificate identities and ACL")
        .withVersion("1")
        .withPriority(1000)
        .withStartPriority(1000)
        .withExtensionMain(new ExtensionMain() {
          @Override
          public void extensionStart(ExtensionStartInput in, ExtensionStartOutput out) {
            Services.securityRegistry().setAuthenticatorProvider(input -> new CertificateAuthenticator(crl));
            // Once per client connection: its identity is its certificate's CN (the authenticator
            // has refused clients without one); the ACL file is read again for every connection.
            Services.securityRegistry().setAuthorizerProvider(input -> {
              String identity = certificate(input.getConnectionInformation()).flatMap(PitwallHiveMQ::commonName).orElse("");
              try {
                return new AclAuthorizer(Files.readAllLines(acl), identity);
              } catch (Exception e) {
                System.err.println("pitwall-hivemq: ACL file unreadable, client " + identity + " may do nothing: " + e);
                return new AclAuthorizer(List.of(), identity);
              }
            });
          }

          @Override
          public void extensionStop(ExtensionStopInput in, ExtensionStopOutput out) {}
        })
        .build();
    EmbeddedHiveMQ hivemq = EmbeddedHiveMQ.builder()
        .withConfigurationFolder(Path.of(args[0]))
        .withDataFolder(Path.of(args[1]))
        .withExtensionsFolder(Path.of(args[1]).resolve("extensions"))
        .withEmbeddedExtension(security)
        .build();
    // SIGTERM stops the broker cleanly: persistent sessions and queued messages are on disk.
    Runtime.getRuntime().addShutdownHook(new Thread(() -> hivemq.stop().join()));
    hivemq.start().join();
    System.out.println("pitwall-hivemq started");
  }

  /** CN of a certificate's subject, or empty. */
  static Optional<String> commonName(X509Certificate cert) {
    try {
      for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) return Optional.of(rdn.getValue().toString());
      }
    } catch (Exception e) {
      return Optional.empty();
    }
    return Optional.empty();
  }

  /** The client's verified certificate, if it presented one. */
  static Optional<X509Certificate> certificate(ConnectionInformation connection) {
    return connection.getClientTlsInformation().flatMap(t -> t.getClientCertificate());
  }

  /**
   * Refuses a client without a certificate naming it, or with a revoked one. Default permissions
   * are left open: every PUBLISH and SUBSCRIBE is decided by {@link AclAuthorizer} (HiveMQ consults
   * defaults only when no authorizer decides). Default permissions are not used for the ACL itself:
   * with them HiveMQ delivered nothing to a shared subscription on a filter with `+`
   * (`$share/g/vehicles/+/telemetry` granted by `vehicles/+/telemetry`), HiveMQ CE 2025.5.
   */
  static final class CertificateAuthenticator implements SimpleAuthenticator {
    private final Path crl;

    CertificateAuthenticator(Path crl) {
      this.crl = crl;
    }

    @Override
    public void onConnect(SimpleAuthInput input, SimpleAuthOutput output) {
      Optional<X509Certificate> cert = certificate(input.getConnectionInformation());
      if (cert.flatMap(PitwallHiveMQ::commonName).isEmpty()) {
        output.failAuthentication(ConnackReasonCode.NOT_AUTHORIZED, "a client certificate naming the client is required");
        return;
      }
      try {
        if (revoked(cert.get())) {
          output.failAuthentication(ConnackReasonCode.NOT_AUTHORIZED, "certificate revoked");
          return;
        }
      } catch (Exception e) {
        output.failAuthentication(ConnackReasonCode.SERVER_UNAVAILABLE, "revocation list unreadable: " + e.getMessage());
        return;
      }
      output.authenticateSuccessfully();
    }

    private boolean revoked(X509Certificate cert) throws Exception {
      if (!Files.exists(crl)) return false;
      try (InputStream in = Files.newInputStream(crl)) {
        X509CRL list = (X509CRL) CertificateFactory.getInstance("X.509").generateCRL(in);
        return list.isRevoked(cert);
      }
    }
  }

  /** One client's rules, made when it connects from its certificate's CN and the ACL file as it is then. */
  static final class AclAuthorizer implements PublishAuthorizer, SubscriptionAuthorizer {
    private final List<String> read = new ArrayList<>();
    private final List<String> write = new ArrayList<>();

    AclAuthorizer(List<String> aclLines, String identity) {
      AclFile.rules(aclLines, identity, read, write);
    }

    @Override
    public void authorizePublish(PublishAuthorizerInput input, PublishAuthorizerOutput output) {
      String topic = input.getPublishPacket().getTopic();
      if (write.stream().anyMatch(rule -> Topics.covers(rule, topic))) output.authorizeSuccessfully();
      else output.failAuthorization(AckReasonCode.NOT_AUTHORIZED, "not authorized to publish to " + topic);
    }

    @Override
    public void authorizeSubscribe(SubscriptionAuthorizerInput input, SubscriptionAuthorizerOutput output) {
      String filter = Topics.unshared(input.getSubscription().getTopicFilter());
      if (read.stream().anyMatch(rule -> Topics.covers(rule, filter))) output.authorizeSuccessfully();
      else output.failAuthorization(SubackReasonCode.NOT_AUTHORIZED, "not authorized to subscribe to " + filter);
    }
  }

  /** Topic filters as Mosquitto's ACL compares them. */
  static final class Topics {
    /** The filter of a shared subscription (`$share/<group>/<filter>`), or the filter itself. */
    static String unshared(String filter) {
      if (!filter.startsWith("$share/")) return filter;
      int slash = filter.indexOf('/', "$share/".length());
      return slash < 0 ? filter : filter.substring(slash + 1);
    }

    /**
     * Whether everything `filter` (a topic, or a subscription's filter) can match is within `rule`:
     * `+` in the rule takes any one level (a `+` of the filter too), `#` the rest; a `#` or `+` of
     * the filter is covered only by a wildcard of the rule at that level.
     */
    static boolean covers(String rule, String filter) {
      String[] r = rule.split("/", -1);
      String[] f = filter.split("/", -1);
      for (int i = 0; i < r.length; i++) {
        if (r[i].equals("#")) return !(i == 0 && f[0].startsWith("$") && !r[0].startsWith("$"));
        if (i >= f.length) return false;
        if (r[i].equals("+")) {
          if (f[i].equals("#")) return false;
          if (i == 0 && f[0].startsWith("$")) return false;
          continue;
        }
        if (!r[i].equals(f[i])) return false;
      }
      return r.length == f.length;
    }
  }

  /**
   * Mosquitto's ACL file format: `pattern read|write|readwrite <topic>` applies to every client with
   * %u the identity; `topic ...` lines apply to the identity of the `user` line above them.
   */
  static final class AclFile {
    static void rules(List<String> lines, String identity, List<String> read, List<String> write) {
      String user = null;
      for (String raw : lines) {
        String line = raw.strip();
        if (line.isEmpty() || line.startsWith("#")) continue;
        String[] parts = line.split("\\s+", 3);
        switch (parts[0]) {
          case "user" -> user = parts.length > 1 ? parts[1] : null;
          case "pattern" -> add(parts, identity, read, write);
          case "topic" -> {
            if (identity.equals(user)) add(parts, identity, read, write);
          }
          default -> throw new IllegalArgumentException("unknown ACL line: " + line);
        }
      }
    }

    private static void add(String[] parts, String identity, List<String> read, List<String> write) {
      String access = parts.length == 3 ? parts[1] : "readwrite";
      String topic = (parts.length == 3 ? parts[2] : parts[1]).replace("%u", identity);
      switch (access) {
        case "read" -> read.add(topic);
        case "write" -> write.add(topic);
        case "readwrite" -> {
          read.add(topic);
          write.add(topic);
        }
        default -> throw new IllegalArgumentException("unknown ACL access: " + access);
      }
    }
  }
}
